// Package harness holds what the Kubernetes 1.37 oracles share: an embedded etcd on free
// loopback ports, the etcd3 store of a resource and its Cacher, wired as kube-apiserver wires
// them (k8s.io/apiserver v0.37.2), and the conversions of API errors and watch events to
// watchsim's JSON shapes (SPEC §3).
//
// Users: the apiserver oracle (../main.go, tests/kube_conformance.rs) and the reflector oracle
// (../reflector, tests/reflector_conformance.rs), and the 1.34 apiserver oracle (../../kube-1.34,
// the same main.go built against k8s.io/apiserver v0.34): this package is its own module (see
// go.mod) and must build against v0.34 as well (storeOf and namespaceKeyFunc hide the two
// differences met so far).
package harness

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/kubernetes"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/apis/example"
	examplev1 "k8s.io/apiserver/pkg/apis/example/v1"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/cacher"
	"k8s.io/apiserver/pkg/storage/etcd3"
	etcdfeature "k8s.io/apiserver/pkg/storage/feature"
	"k8s.io/apiserver/pkg/storage/value/encrypt/identity"
	"k8s.io/utils/clock"
)

var (
	// Scheme knows the example API group (k8s.io/apiserver's test type Pod) and meta/v1.
	Scheme = runtime.NewScheme()
	// Codecs of Scheme.
	Codecs = serializer.NewCodecFactory(Scheme)
)

func init() {
	metav1.AddToGroupVersion(Scheme, metav1.SchemeGroupVersion)
	utilruntime.Must(example.AddToScheme(Scheme))
	utilruntime.Must(examplev1.AddToScheme(Scheme))
}

// NewPod and NewPodList are the store's and the cacher's NewFunc / NewListFunc.
func NewPod() runtime.Object     { return &example.Pod{} }
func NewPodList() runtime.Object { return &example.PodList{} }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartEtcd starts a fresh single-member etcd on free loopback ports, trying again when a port
// picked as free was taken before etcd could bind it. The data dir is e.Config().Dir.
func StartEtcd() (e *embed.Etcd, c *kubernetes.Client, dir string, err error) {
	for attempt := 0; attempt < 5; attempt++ {
		e, c, dir, err = startEtcdOnce()
		if err == nil || !strings.Contains(err.Error(), "address already in use") {
			return e, c, dir, err
		}
		os.RemoveAll(dir)
	}
	return e, c, dir, err
}

func startEtcdOnce() (*embed.Etcd, *kubernetes.Client, string, error) {
	dir, err := os.MkdirTemp("", "watchsim-oracle-etcd-")
	if err != nil {
		return nil, nil, "", err
	}
	cfg := embed.NewConfig()
	cfg.Dir = dir
	cfg.UnsafeNoFsync = true
	// A single member elects itself after one election timeout: keep it short (as
	// tests/etcd_conformance.rs does for Debian's etcd).
	cfg.TickMs = 10
	cfg.ElectionMs = 100
	cp, err := freePort()
	if err != nil {
		return nil, nil, dir, err
	}
	pp, err := freePort()
	if err != nil {
		return nil, nil, dir, err
	}
	clientURL := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(cp))}
	peerURL := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(pp))}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, nil, dir, err
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, nil, dir, fmt.Errorf("embedded etcd took too long to start")
	}
	client, err := kubernetes.New(clientv3.Config{
		Endpoints:   []string{clientURL.String()},
		DialTimeout: 10 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		e.Close()
		return nil, nil, dir, err
	}
	return e, client, dir, nil
}

// NewStore is the etcd3 store of resource `name` under /registry, as kube-apiserver builds it,
// with a compactor of interval 0 (no periodic compaction; it still watches compact_rev_key).
func NewStore(client *kubernetes.Client, clk clock.WithTicker, name string) (storage.Interface, interface{ Stop() }, error) {
	codec := Codecs.LegacyCodec(examplev1.SchemeGroupVersion)
	versioner := storage.APIObjectVersioner{}
	compactor := etcd3.NewCompactor(client.Client, 0, clk, nil)
	s, err := storeOf(etcd3.New(client, compactor, codec, NewPod, NewPodList, "/registry", "/"+name,
		schema.GroupResource{Resource: name}, identity.NewEncryptCheckTransformer(),
		etcd3.NewDefaultLeaseManagerConfig(), etcd3.NewDefaultDecoder(codec, versioner), versioner))
	if err != nil {
		return nil, nil, err
	}
	return s, compactor, nil
}

// storeOf takes etcd3.New's results, which differ between the versions that build this package:
// the store (v0.34) or the store and an error (v0.37). A call f(g()) binds g's results to f's
// variadic parameter, so one source builds against both.
func storeOf(results ...any) (storage.Interface, error) {
	if len(results) > 1 && results[1] != nil {
		return nil, results[1].(error)
	}
	return results[0].(storage.Interface), nil
}

// NewCacher builds the Cacher of resource prefix "/<name>" over `store` (its own LIST and
// WATCH go to `store`), with the cacher's clock `clk`. It does not wait until it is ready.
func NewCacher(store storage.Interface, name string, clk clock.WithTicker) (*cacher.Cacher, error) {
	resourcePrefix := "/" + name
	config := cacher.Config{
		Storage:             store,
		Versioner:           storage.APIObjectVersioner{},
		GroupResource:       schema.GroupResource{Resource: name},
		EventsHistoryWindow: cacher.DefaultEventFreshDuration,
		ResourcePrefix:      resourcePrefix,
		KeyFunc:             namespaceKeyFunc(resourcePrefix),
		GetAttrsFunc:        storage.DefaultNamespaceScopedAttr,
		NewFunc:             NewPod,
		NewListFunc:         NewPodList,
		Codec:               Codecs.LegacyCodec(examplev1.SchemeGroupVersion),
		Clock:               clk,
	}
	return cacher.NewCacherFromConfig(config)
}

// namespaceKeyFunc is the cacher's KeyFunc of a namespaced resource, as kube-apiserver's
// storage_factory.go builds it: the key "/<resource>/<namespace>/<name>" by
// storage.NamespaceKeyFunc, which v0.37 calls with the prefix and its trailing "/" (and refuses
// a prefix without it) while v0.34 adds the "/" itself (given "/pods/", it would make
// "/pods//default/x": the cache then finds no object by key (a GET answers 404) and a
// continuation's key is invalid). One source for both: the prefix with its "/", and a doubled
// "/" after it made single.
func namespaceKeyFunc(resourcePrefix string) func(runtime.Object) (string, error) {
	return func(obj runtime.Object) (string, error) {
		key, err := storage.NamespaceKeyFunc(resourcePrefix+"/", obj)
		if err != nil {
			return "", err
		}
		return strings.Replace(key, resourcePrefix+"//", resourcePrefix+"/", 1), nil
	}
}

// StatusJSON is an error as watchsim's `{"code", "reason", "message"[, "retry_after_seconds",
// "cause"]}`; an error that is no API status is an InternalError.
func StatusJSON(err error) map[string]any {
	var st metav1.Status
	if se, ok := err.(apierrors.APIStatus); ok {
		st = se.Status()
	} else {
		st = apierrors.NewInternalError(err).Status()
	}
	return StatusFrom(&st)
}

// StatusFrom is a Status as watchsim's error object.
func StatusFrom(st *metav1.Status) map[string]any {
	v := map[string]any{"code": st.Code, "reason": string(st.Reason), "message": st.Message}
	if st.Details != nil {
		if st.Details.RetryAfterSeconds > 0 {
			v["retry_after_seconds"] = st.Details.RetryAfterSeconds
		}
		if len(st.Details.Causes) > 0 {
			v["cause"] = string(st.Details.Causes[0].Type)
		}
	}
	return v
}

// EventJSON is a watch event as watchsim reports it: ERROR with the status, BOOKMARK with its
// RV (and `initial_events_end`), else the type, name, namespace and RV of the object.
func EventJSON(ev watch.Event) map[string]any {
	switch ev.Type {
	case watch.Error:
		st, ok := ev.Object.(*metav1.Status)
		if !ok {
			return map[string]any{"type": "ERROR", "code": 500, "reason": "InternalError", "message": fmt.Sprintf("%T", ev.Object)}
		}
		v := StatusFrom(st)
		v["type"] = "ERROR"
		return v
	case watch.Bookmark:
		m, _ := meta.Accessor(ev.Object)
		v := map[string]any{"type": "BOOKMARK", "resource_version": m.GetResourceVersion()}
		if m.GetAnnotations()[metav1.InitialEventsAnnotationKey] == "true" {
			v["initial_events_end"] = true
		}
		return v
	default:
		m, _ := meta.Accessor(ev.Object)
		return map[string]any{"type": string(ev.Type), "name": m.GetName(), "namespace": m.GetNamespace(), "resource_version": m.GetResourceVersion()}
	}
}

// WaitForWatchProgressSupport waits (at most 10 s) until the etcd3 store's background check of
// etcd's version (storage/feature DefaultFeatureSupportChecker, started by etcd3.New) has
// confirmed RequestWatchProgress: until then the cacher delegates consistent reads to etcd and
// refuses streaming lists.
func WaitForWatchProgressSupport() error {
	deadline := time.Now().Add(10 * time.Second)
	for !etcdfeature.DefaultFeatureSupportChecker.Supports(storage.RequestWatchProgress) {
		if time.Now().After(deadline) {
			return fmt.Errorf("etcd's RequestWatchProgress support was not confirmed within 10 s")
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}
