// Command oracle runs watchsim's scripted apiserver steps against the real Kubernetes 1.27 code:
// k8s.io/apiserver v0.27.3 (the newest v0.27 the Go module proxy serves) and its etcd3 store and
// Cacher over an embedded etcd (the version v0.27.3's go.mod pins, 3.5.7), with the handler's
// ListOptions defaulting and validation of 1.27. harness.go is a symlink to the 1.31 oracle's
// (../kube-1.31/harness.go): the harness (input, output, clock, steps) is shared; this file is
// 1.27's wiring, the 1.31 oracle's main.go with what v0.27 lacks or names otherwise:
//   - etcd3.New takes one path prefix ("/registry"; the keys carry the resource prefix), the
//     paging flag (on, as kube-apiserver sets it) and no resource prefix;
//   - the Cacher has no Wait and no ReadinessCheck: LastSyncResourceVersion blocks until it is
//     ready, and a request to a cacher that is not ready blocks too (no 429 before 1.31);
//   - embed.Config names its URLs LPUrls, APUrls, LCUrls, ACUrls (etcd 3.5.7);
//   - there is no storage feature checker (storage/feature): consistent reads are not served
//     from the cache before 1.31 (ConsistentListFromCache did not exist), nothing to wait for;
//   - the feature gates are v0.27's defaults: WatchList off (alpha).
package main

import (
	"context"
	"net/url"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/cacher"
	"k8s.io/apiserver/pkg/storage/etcd3"
	"k8s.io/apiserver/pkg/storage/value/encrypt/identity"
	"k8s.io/utils/clock"
)

type version struct{}

type conn struct{ client *clientv3.Client }

func (version) Connect(endpoint string) (Conn, error) {
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{endpoint},
		DialTimeout: 10 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, err
	}
	return &conn{client: c}, nil
}

func (c *conn) Close() { c.client.Close() }

// requestLists is put in a request's context: the etcd LISTs made on its behalf.
type requestLists struct{ n int }

type requestListsKey struct{}

// countingStorage is the store the Cacher is given; it counts the LISTs a request sends to etcd
// (the reflector's LIST has no request context): recursive ones and the single-object LIST of
// an exact metadata.name selector (not recursive, the object's key), but not the consistent-read
// probe (storage.GetCurrentResourceVersionFromStorage: a non-recursive LIST of the resource
// prefix itself, 1.31+).
type countingStorage struct {
	storage.Interface
	// prefix is the resource prefix ("/pods"), the probe's key.
	prefix string
}

// Get counts a GET the Cacher sends to etcd (cacher.go Cacher.Get: RV unset, or a cache that
// is not ready) as a LIST of the request.
func (c countingStorage) Get(ctx context.Context, key string, opts storage.GetOptions, objPtr runtime.Object) error {
	if rl, ok := ctx.Value(requestListsKey{}).(*requestLists); ok {
		rl.n++
	}
	return c.Interface.Get(ctx, key, opts, objPtr)
}

func (c countingStorage) GetList(ctx context.Context, key string, opts storage.ListOptions, listObj runtime.Object) error {
	if rl, ok := ctx.Value(requestListsKey{}).(*requestLists); ok && (opts.Recursive || key != c.prefix) {
		rl.n++
	}
	return c.Interface.GetList(ctx, key, opts, listObj)
}

type storeAndCacher struct {
	spec   ResourceSpec
	store  storage.Interface
	clk    clock.WithTicker
	cacher *cacher.Cacher
}

func (c *conn) NewResource(spec ResourceSpec, clk clock.WithTicker) (Resource, error) {
	s := etcd3.New(c.client, Codec(), NewPod, "/registry", spec.GR,
		identity.NewEncryptCheckTransformer(), true, etcd3.NewDefaultLeaseManagerConfig())
	return &storeAndCacher{spec: spec, store: s, clk: clk}, nil
}

func (r *storeAndCacher) StartCache() error {
	config := cacher.Config{
		Storage:        countingStorage{Interface: r.store, prefix: r.spec.Prefix},
		Versioner:      storage.APIObjectVersioner{},
		GroupResource:  r.spec.GR,
		ResourcePrefix: r.spec.Prefix,
		// The registry's key of a namespaced object, "/pods/<ns>/<name>" (v0.31's
		// storage.NamespaceKeyFunc adds the "/" after the prefix itself).
		KeyFunc:      func(obj runtime.Object) (string, error) { return storage.NamespaceKeyFunc(r.spec.Prefix, obj) },
		GetAttrsFunc: storage.DefaultNamespaceScopedAttr,
		NewFunc:      NewPod,
		NewListFunc:  NewPodList,
		Codec:        Codec(),
		Clock:        r.clk,
	}
	c, err := cacher.NewCacherFromConfig(config)
	if err != nil {
		return err
	}
	r.cacher = c
	// v0.27 has no Cacher.Wait: LastSyncResourceVersion waits until the cacher is ready.
	_, err = c.LastSyncResourceVersion()
	return err
}

func (r *storeAndCacher) StopCache() {
	if r.cacher != nil {
		r.cacher.Stop()
	}
}

// CacheReady: v0.27 has no readiness check; CacheRV (LastSyncResourceVersion) waits until the
// cacher is ready.
func (r *storeAndCacher) CacheReady() bool { return true }

func (r *storeAndCacher) CacheRV() (uint64, error) { return r.cacher.LastSyncResourceVersion() }

func (r *storeAndCacher) Close() {}

func (r *storeAndCacher) Seed(ctx context.Context, key string, obj, out runtime.Object) error {
	return r.store.Create(ctx, key, obj, out, 0)
}

func (r *storeAndCacher) Create(ctx context.Context, key string, obj, out runtime.Object) error {
	return r.cacher.Create(ctx, key, obj, out, 0)
}

func (r *storeAndCacher) Update(ctx context.Context, key string, out runtime.Object, tryUpdate storage.UpdateFunc) error {
	return r.cacher.GuaranteedUpdate(ctx, key, out, false, nil, tryUpdate, nil)
}

func (r *storeAndCacher) Delete(ctx context.Context, key string, out runtime.Object) error {
	return r.cacher.Delete(ctx, key, out, nil, storage.ValidateAllObjectFunc, nil)
}

func (r *storeAndCacher) GetList(ctx context.Context, key string, opts storage.ListOptions, list runtime.Object) (bool, error) {
	rl := &requestLists{}
	err := r.cacher.GetList(context.WithValue(ctx, requestListsKey{}, rl), key, opts, list)
	return rl.n > 0, err
}

func (r *storeAndCacher) Watch(ctx context.Context, key string, opts storage.ListOptions) (watch.Interface, error) {
	return r.cacher.Watch(ctx, key, opts)
}

func (r *storeAndCacher) Get(ctx context.Context, key string, opts storage.GetOptions, out runtime.Object) (bool, error) {
	rl := &requestLists{}
	err := r.cacher.Get(context.WithValue(ctx, requestListsKey{}, rl), key, opts, out)
	return rl.n > 0, err
}

func (r *storeAndCacher) Direct() Registry { return direct{r.store} }

// direct is the registry's storage with the watch cache off: the etcd3 store itself (the
// registry's generic.UndecoratedStorage); every read is from etcd.
type direct struct{ store storage.Interface }

func (d direct) Create(ctx context.Context, key string, obj, out runtime.Object) error {
	return d.store.Create(ctx, key, obj, out, 0)
}

func (d direct) Update(ctx context.Context, key string, out runtime.Object, tryUpdate storage.UpdateFunc) error {
	return d.store.GuaranteedUpdate(ctx, key, out, false, nil, tryUpdate, nil)
}

func (d direct) Delete(ctx context.Context, key string, out runtime.Object) error {
	return d.store.Delete(ctx, key, out, nil, storage.ValidateAllObjectFunc, nil)
}

func (d direct) GetList(ctx context.Context, key string, opts storage.ListOptions, list runtime.Object) (bool, error) {
	return true, d.store.GetList(ctx, key, opts, list)
}

func (d direct) Watch(ctx context.Context, key string, opts storage.ListOptions) (watch.Interface, error) {
	return d.store.Watch(ctx, key, opts)
}

func (d direct) Get(ctx context.Context, key string, opts storage.GetOptions, out runtime.Object) (bool, error) {
	return true, d.store.Get(ctx, key, opts, out)
}

// setEtcdURLs sets the embedded etcd's peer and client URLs (etcd 3.5.7's field names).
func setEtcdURLs(cfg *embed.Config, peer, client url.URL) {
	cfg.LPUrls = []url.URL{peer}
	cfg.APUrls = []url.URL{peer}
	cfg.LCUrls = []url.URL{client}
	cfg.ACUrls = []url.URL{client}
}

// awaitStorageFeatures: v0.27 has no storage feature checker; nothing to wait for.
func awaitStorageFeatures() error { return nil }

func main() { Main(version{}) }
