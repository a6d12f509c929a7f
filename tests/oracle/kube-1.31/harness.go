// The version-independent part of the 1.31 and 1.27 oracles (../kube-1.27/harness.go is a
// symlink to this file, so it must build against k8s.io/apiserver v0.27 too: main.go supplies
// what differs, e.g. setEtcdURLs and awaitStorageFeatures): it reads the cases, starts an embedded etcd,
// runs each case's scripted steps on a fake clock against the resources main.go wires, and
// writes the answers.
//
// This is tests/oracle/kube-1.37/main.go's harness (commit 1067680) with the wiring of a resource
// moved behind the Version/Conn/Resource interfaces below (main.go implements them for 1.31).
// Two Go modules cannot share a package without a third module, so the 1.37 oracle keeps its own
// copy. Differences from that copy, all harness fidelity fixes found while building this oracle
// (see notes.md, "Kubernetes oracle"):
//   - an error that is not an API status is answered as the handler answers it
//     (responsewriters.ErrorToAPIStatus: 500, no reason, the error's text), not wrapped as an
//     InternalError;
//   - api.unwatch of a watch whose api.watch was answered with an error returns {} (as in
//     watchsim), not a harness_error;
//   - setup waits until the etcd3 store has confirmed etcd's RequestWatchProgress support
//     (storage/feature DefaultFeatureSupportChecker, checked in the background): until then the
//     cacher serves no consistent read from the cache;
//   - klog's error lines do not reach stderr.
//
// Watch cache off (the case's "watch_cache": "off"): no Cacher is built; every request goes to
// the etcd3 store (Resource.Direct), as kube-apiserver's registry uses it without a watch cache,
// and settling waits for the harness's own etcd watch to see the last write. The store's watches
// (etcd3/watcher.go) read no clock but the handler's deadline, kept on the fake clock; they ask
// etcd for no progress notifications, so they send no bookmarks.
//
// Both copies skip the yield after a clock tick that fires no timer (trackingClock), which
// halves a sequence's real time. WATCHSIM_ORACLE_TIMING=1 prints where each case's time went.
//
// Input (a file named as the first argument, or stdin): a JSON document
//
//	{"cases": [{"name": "...", "resources": [{"name": "pods", "count": 3}],
//	            "duration_ms": 60000, "steps": [{"at": "1s", "at_ms": 1000, "op": "api.list", ...}]}]}
//
// where each step has the fields of a watchsim scripted step (SPEC §3). Output: one JSON line
// per case, {"name", "script": [...], "watches": {...}}, in the shapes of `watchsim run --json`.
//
// Time: the cacher, its watch cache, its progress requester and its bookmark timer read a fake
// clock (k8s.io/utils/clock/testing), advanced to each step's `at` in small increments. etcd and
// the cacher's internal reflector run in real time; after each step the harness waits until every
// cacher has caught up with the last write to its prefix and no watch has received an event for
// a short quiet period (notes.md, "Kubernetes oracle", says what stays timing-dependent).
package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metainternalversionvalidation "k8s.io/apimachinery/pkg/apis/meta/internalversion/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/selection"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/apis/example"
	examplev1 "k8s.io/apiserver/pkg/apis/example/v1"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	"k8s.io/apiserver/pkg/features"
	"k8s.io/apiserver/pkg/storage"
	storeerr "k8s.io/apiserver/pkg/storage/errors"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	testingclock "k8s.io/utils/clock/testing"
)

var (
	// Scheme holds the example API group (example.Pod stands for every resource).
	Scheme = runtime.NewScheme()
	// Codecs is Scheme's codec factory.
	Codecs = serializer.NewCodecFactory(Scheme)
)

func init() {
	metav1.AddToGroupVersion(Scheme, metav1.SchemeGroupVersion)
	utilruntime.Must(example.AddToScheme(Scheme))
	utilruntime.Must(examplev1.AddToScheme(Scheme))
}

// Codec is the storage codec of every resource.
func Codec() runtime.Codec { return Codecs.LegacyCodec(examplev1.SchemeGroupVersion) }

// NewPod and NewPodList are the NewFunc and NewListFunc of every resource.
func NewPod() runtime.Object     { return &example.Pod{} }
func NewPodList() runtime.Object { return &example.PodList{} }

// ---------------------------------------------------------------------------------------------
// What an oracle binary supplies.

// Version wires resources as one kube-apiserver version does.
type Version interface {
	// Connect opens what the resources of one case share, for the etcd serving at endpoint.
	Connect(endpoint string) (Conn, error)
}

// Conn is one case's connection to etcd.
type Conn interface {
	// NewResource builds the etcd3 store of one resource (its cacher starts with StartCache);
	// clk is the case's fake clock, for everything in the apiserver that reads a clock.
	NewResource(spec ResourceSpec, clk clock.WithTicker) (Resource, error)
	Close()
}

// ResourceSpec names one resource: GroupResource{Resource: Name}, keys "/registry" + Prefix + "/<ns>/<name>".
type ResourceSpec struct {
	Name   string
	GR     schema.GroupResource
	Prefix string // "/pods"
}

// Registry is what the registry's Store calls for one resource: its storage.Interface (the
// Cacher or the CacheDelegator in front of the etcd3 store, or the etcd3 store itself with the
// watch cache off).
type Registry interface {
	Create(ctx context.Context, key string, obj, out runtime.Object) error
	Update(ctx context.Context, key string, out runtime.Object, tryUpdate storage.UpdateFunc) error
	Delete(ctx context.Context, key string, out runtime.Object) error
	// GetList serves a LIST; fromEtcd says whether it read etcd for the request (a LIST
	// delegated to etcd or a fallback; not the consistent-read probe).
	GetList(ctx context.Context, key string, opts storage.ListOptions, list runtime.Object) (fromEtcd bool, err error)
	Watch(ctx context.Context, key string, opts storage.ListOptions) (watch.Interface, error)
	// Get serves a GET; fromEtcd says whether it read etcd.
	Get(ctx context.Context, key string, opts storage.GetOptions, out runtime.Object) (fromEtcd bool, err error)
}

// Resource is one resource as the registry sees it (the Cacher or the CacheDelegator in front of
// the etcd3 store).
type Resource interface {
	Registry
	// Direct is the registry's storage with the watch cache off: the etcd3 store itself.
	Direct() Registry
	// Seed writes an initial object to the etcd3 store directly (before the cacher starts).
	Seed(ctx context.Context, key string, obj, out runtime.Object) error
	// StartCache builds a new Cacher (as kube-apiserver does when it starts) and waits until
	// it is ready.
	StartCache() error
	// StopCache stops the cacher (its watches end).
	StopCache()
	CacheReady() bool
	CacheRV() (uint64, error)
	// Close releases what NewResource built.
	Close()
}

// ---------------------------------------------------------------------------------------------
// Input and output shapes.

type input struct {
	Cases []caseIn `json:"cases"`
}

type resourceIn struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

type caseIn struct {
	Name       string       `json:"name"`
	Resources  []resourceIn `json:"resources"`
	DurationMs int64        `json:"duration_ms"`
	Steps      []stepIn     `json:"steps"`
	// WatchCache is the scenario's apiserver.watch_cache.mode; "off": no Cacher, the registry
	// uses the etcd3 store directly (LIST, WATCH and GET go to etcd).
	WatchCache string `json:"watch_cache"`
}

type stepIn struct {
	At                string  `json:"at"`
	AtMs              int64   `json:"at_ms"`
	Op                string  `json:"op"`
	ID                string  `json:"id"`
	Resource          string  `json:"resource"`
	Name              string  `json:"name"`
	Namespace         string  `json:"namespace"`
	ResourceVersion   *string `json:"resource_version"`
	Match             string  `json:"match"`
	Limit             int64   `json:"limit"`
	Continue          bool    `json:"continue"`
	Bookmarks         bool    `json:"bookmarks"`
	SendInitialEvents *bool   `json:"send_initial_events"`
	TimeoutMs         int64   `json:"timeout_ms"`
	// Labels of api.create / api.update (nil: absent; on update, keep the object's labels).
	Labels map[string]string `json:"labels"`
	// LabelSelector and FieldSelector of api.list / api.watch ("" = none).
	LabelSelector string `json:"label_selector"`
	FieldSelector string `json:"field_selector"`
}

type caseOut struct {
	Name    string                      `json:"name"`
	Script  []map[string]any            `json:"script"`
	Watches map[string][]map[string]any `json:"watches"`
	Error   string                      `json:"error,omitempty"`
}

// ---------------------------------------------------------------------------------------------
// The harness for one case.

type resource struct {
	ResourceSpec
	Resource
	// reg is the registry's storage: the Resource, or its Direct() with the watch cache off.
	reg       Registry
	lastWrite uint64
	updates   int
	// continue token of the last LIST of this resource that returned one
	lastContinue string
}

type deadlineCtx struct {
	context.Context
	deadline time.Time
}

func (d deadlineCtx) Deadline() (time.Time, bool) { return d.deadline, !d.deadline.IsZero() }

type watchRec struct {
	id       string
	w        watch.Interface
	cancel   context.CancelFunc
	deadline time.Time
	mu       sync.Mutex
	events   []map[string]any
	closed   bool
	// unwatched: the client closed the watch itself (api.unwatch); watchsim reports no CLOSED
	// event for a stream the client ended.
	unwatched bool
	done      chan struct{}
}

type harness struct {
	version   Version
	clk       *trackingClock
	start     time.Time
	etcd      *embed.Etcd
	kv        *clientv3.Client // the harness's own client (fault.compact_now)
	conn      Conn
	resources map[string]*resource
	order     []string
	watches   map[string]*watchRec
	watchIDs  []string
	// failedWatches: watch ids whose api.watch was answered with an error (no stream)
	failedWatches map[string]bool
	activity      chan struct{}
	// cacheOff: the scenario's watch cache is off (no Cacher; see caseIn.WatchCache).
	cacheOff bool
	// etcdRev is the highest revision the harness's own etcd watch of /registry/ has seen
	// (cache off: settle waits for it to reach the last write, since the store's watches
	// are fed by the same etcd watch stream); stopEtcdWatch ends that watch.
	etcdRev       atomic.Int64
	stopEtcdWatch context.CancelFunc
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startEtcd starts a fresh single-member etcd on free loopback ports, trying again when a port
// picked as free was taken before etcd could bind it.
func startEtcd() (e *embed.Etcd, endpoint string, err error) {
	for attempt := 0; attempt < 5; attempt++ {
		var dir string
		e, endpoint, dir, err = startEtcdOnce()
		if err == nil || !strings.Contains(err.Error(), "address already in use") {
			return e, endpoint, err
		}
		os.RemoveAll(dir)
	}
	return e, endpoint, err
}

func startEtcdOnce() (*embed.Etcd, string, string, error) {
	dir, err := os.MkdirTemp("", "watchsim-oracle-etcd-")
	if err != nil {
		return nil, "", "", err
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
		return nil, "", dir, err
	}
	pp, err := freePort()
	if err != nil {
		return nil, "", dir, err
	}
	clientURL := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(cp))}
	peerURL := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(pp))}
	setEtcdURLs(cfg, peerURL, clientURL) // main.go: the field names differ between etcd 3.5 patches
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, "", dir, err
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, "", dir, fmt.Errorf("embedded etcd took too long to start")
	}
	return e, clientURL.String(), dir, nil
}

func objKey(r *resource, ns, name string) string {
	return r.Prefix + "/" + ns + "/" + name
}

func (h *harness) setup(c caseIn) error {
	// The fake clock starts at the real time and runs ahead of it, so a watch deadline handed
	// to etcd requests (gRPC reads ctx.Deadline()) is never already past in real time.
	h.clk = &trackingClock{FakeClock: testingclock.NewFakeClock(time.Now())}
	h.start = h.clk.Now()
	h.resources = map[string]*resource{}
	h.watches = map[string]*watchRec{}
	h.failedWatches = map[string]bool{}
	h.activity = make(chan struct{}, 1)
	e, endpoint, err := startEtcd()
	if err != nil {
		return err
	}
	h.etcd = e
	h.kv, err = clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	h.conn, err = h.version.Connect(endpoint)
	if err != nil {
		return err
	}
	for _, ri := range c.Resources {
		spec := ResourceSpec{Name: ri.Name, GR: schema.GroupResource{Resource: ri.Name}, Prefix: "/" + ri.Name}
		res, err := h.conn.NewResource(spec, h.clk)
		if err != nil {
			return err
		}
		r := &resource{ResourceSpec: spec, Resource: res, reg: res}
		if c.WatchCache == "off" {
			r.reg = res.Direct()
		}
		h.resources[ri.Name] = r
		h.order = append(h.order, ri.Name)
		for i := 0; i < ri.Count; i++ {
			name := fmt.Sprintf("%s-%06d", ri.Name, i)
			obj := &example.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
			out := &example.Pod{}
			if err := r.Seed(context.Background(), objKey(r, "default", name), obj, out); err != nil {
				return fmt.Errorf("initial create %s: %v", name, err)
			}
			rv, _ := strconv.ParseUint(out.ResourceVersion, 10, 64)
			r.lastWrite = rv
		}
	}
	h.cacheOff = c.WatchCache == "off"
	for _, name := range h.order {
		if h.cacheOff {
			continue
		}
		if err := h.resources[name].StartCache(); err != nil {
			return err
		}
	}
	if h.cacheOff {
		if err := h.watchEtcd(); err != nil {
			return err
		}
	}
	// main.go: waits until the apiserver knows what the etcd serves (1.31: the etcd3 store's
	// background RequestWatchProgress check); kube-apiserver has long done so when it takes
	// requests.
	return awaitStorageFeatures()
}

// watchEtcd starts the harness's own watch of every key under /registry/ from etcd's current
// revision, recording in h.etcdRev the revision of each event it sees.
func (h *harness) watchEtcd() error {
	resp, err := h.kv.Get(context.Background(), "watchsim-probe")
	if err != nil {
		return err
	}
	h.etcdRev.Store(resp.Header.Revision)
	ctx, cancel := context.WithCancel(context.Background())
	h.stopEtcdWatch = cancel
	wch := h.kv.Watch(ctx, "/registry/", clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
	go func() {
		for wres := range wch {
			for _, ev := range wres.Events {
				if ev.Kv.ModRevision > h.etcdRev.Load() {
					h.etcdRev.Store(ev.Kv.ModRevision)
				}
			}
		}
	}()
	return nil
}

func (h *harness) teardown() {
	if h.stopEtcdWatch != nil {
		h.stopEtcdWatch()
	}
	for _, id := range h.watchIDs {
		w := h.watches[id]
		w.w.Stop()
		w.cancel()
	}
	for _, name := range h.order {
		r := h.resources[name]
		r.StopCache()
		r.Close()
	}
	if h.conn != nil {
		h.conn.Close()
	}
	if h.kv != nil {
		h.kv.Close()
	}
	if h.etcd != nil {
		dir := h.etcd.Config().Dir
		h.etcd.Close()
		os.RemoveAll(dir)
	}
}

// ---------------------------------------------------------------------------------------------
// Time and settling.

func (h *harness) now() time.Duration { return h.clk.Since(h.start) }

const tick = 250 * time.Millisecond

// advanceTo steps the fake clock to t (since the start) in ticks, closing watches whose deadline
// passed (the handler's timeout ends the response: the client sees the stream end). After a tick
// that fired one of the clock's timers it waits until the goroutines waiting on those timers have
// taken their tick (awaitReceivers), then lets them run (yield); a tick that fired none has woken
// nothing, and the next one follows at once.
func (h *harness) advanceTo(t time.Duration) {
	for h.now() < t {
		d := tick
		if rest := t - h.now(); rest < d {
			d = rest
		}
		fires, fired := h.clk.firesWithin(d)
		h.clk.Step(d)
		if fires {
			h.clk.awaitReceivers(fired)
			h.yield()
		}
		h.expireWatches()
	}
}

// awaitReceivers waits (at most 50 ms in all) until every timer that just fired has been
// received (its channel read) and, for a timer from NewTimer, re-armed (Reset) by the goroutine
// that woke: every NewTimer of the cacher's code is a loop's timer re-armed on each tick (the
// bookmark timer of dispatchEvents, the progress requester's, the watch cache compactor's).
//
// Without it the clock could move on before the woken goroutine re-armed its timer: the ticks
// after it fire nothing known and do not yield, so a re-arm late in real time was a re-arm late
// on the clock, by up to the rest of the run. The cacher's dispatchEvents loop re-arms its
// 1-1.25 s bookmark timer so (cacher.go `case <-bookmarkTimer.C(): bookmarkTimer.Reset(...)`),
// and only its ticks pop due watchers from the bookmark buckets: a re-arm past the run's end
// lost the watch's last periodic bookmark (the 1.31 difference once kept as
// "LAST_PERIODIC_BOOKMARK_MISSING_1_31"). A timer nobody waits on (the progress requester's
// while no request waits, a channel a select abandoned) costs the wait once: it is forgotten
// once due.
func (c *trackingClock) awaitReceivers(fired []firedTimer) {
	deadline := time.Now().Add(50 * time.Millisecond)
	for _, f := range fired {
		for time.Now().Before(deadline) {
			if len(f.ch) == 0 && (!f.rearms || c.armCount(f.ch) > f.arms) {
				break
			}
			time.Sleep(20 * time.Microsecond)
		}
	}
}

// yield lets the goroutines woken by a clock step run.
func (h *harness) yield() {
	time.Sleep(300 * time.Microsecond)
}

// trackingClock is the fake clock of a case: a testingclock.FakeClock that also notes when each
// timer it hands out is due, so that advanceTo knows whether a step fires one. A stopped timer
// stays noted (a step may yield for nothing, which is harmless).
type trackingClock struct {
	*testingclock.FakeClock
	mu      sync.Mutex
	due     []dueTimer
	tickers []periodic
	// arms counts how many times each timer channel was armed (created or Reset).
	arms map[<-chan time.Time]int
}

// dueTimer is a timer handed out by a trackingClock: when it is due, the channel it fires on
// (nil for AfterFunc, whose function runs inside Step) and whether it is a NewTimer (its owner
// re-arms it: see awaitReceivers).
type dueTimer struct {
	at     time.Time
	ch     <-chan time.Time
	rearms bool
}

// firedTimer is a timer that a step fires: its channel, whether its owner re-arms it and how
// many times it had been armed before.
type firedTimer struct {
	ch     <-chan time.Time
	rearms bool
	arms   int
}

type periodic struct {
	start  time.Time
	period time.Duration
}

func (c *trackingClock) note(d time.Duration, ch <-chan time.Time, rearms bool) {
	c.mu.Lock()
	c.due = append(c.due, dueTimer{at: c.Now().Add(d), ch: ch, rearms: rearms})
	if ch != nil {
		if c.arms == nil {
			c.arms = map[<-chan time.Time]int{}
		}
		c.arms[ch]++
	}
	c.mu.Unlock()
}

func (c *trackingClock) armCount(ch <-chan time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.arms[ch]
}

// firesWithin tells whether a step of d fires a timer: one due in [now, now+d] (a timer due
// now, e.g. Reset(0), fires at the next step), and returns the channels of those timers; it
// forgets those due by now+d (earlier ones fired while awaitStepping stepped the clock).
func (c *trackingClock) firesWithin(d time.Duration) (fires bool, fired []firedTimer) {
	now := c.Now()
	end := now.Add(d)
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.due[:0]
	for _, t := range c.due {
		switch {
		case t.at.After(end):
			kept = append(kept, t)
		case !t.at.Before(now):
			fires = true
			if t.ch != nil {
				fired = append(fired, firedTimer{ch: t.ch, rearms: t.rearms, arms: c.arms[t.ch]})
			}
		}
	}
	c.due = kept
	for _, p := range c.tickers {
		// the first tick after now, start + k*period > now
		k := now.Sub(p.start)/p.period + 1
		if !p.start.Add(k * p.period).After(end) {
			fires = true
		}
	}
	return fires, fired
}

func (c *trackingClock) After(d time.Duration) <-chan time.Time {
	ch := c.FakeClock.After(d)
	c.note(d, ch, false)
	return ch
}

func (c *trackingClock) NewTimer(d time.Duration) clock.Timer {
	t := c.FakeClock.NewTimer(d)
	c.note(d, t.C(), true)
	return trackingTimer{Timer: t, c: c, ch: t.C()}
}

func (c *trackingClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	c.note(d, nil, false)
	return trackingTimer{Timer: c.FakeClock.AfterFunc(d, f), c: c}
}

func (c *trackingClock) NewTicker(d time.Duration) clock.Ticker {
	c.mu.Lock()
	c.tickers = append(c.tickers, periodic{start: c.Now(), period: d})
	c.mu.Unlock()
	return c.FakeClock.NewTicker(d)
}

func (c *trackingClock) Tick(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.tickers = append(c.tickers, periodic{start: c.Now(), period: d})
	c.mu.Unlock()
	return c.FakeClock.Tick(d)
}

type trackingTimer struct {
	clock.Timer
	c *trackingClock
	// ch is the channel the timer fires on (nil for an AfterFunc timer).
	ch <-chan time.Time
}

func (t trackingTimer) Reset(d time.Duration) bool {
	t.c.note(d, t.ch, t.ch != nil)
	return t.Timer.Reset(d)
}

func (h *harness) expireWatches() {
	now := h.clk.Now()
	for _, id := range h.watchIDs {
		w := h.watches[id]
		if !w.deadline.IsZero() && !now.Before(w.deadline) && !w.isClosed() {
			h.settle()
			w.w.Stop()
			w.cancel()
			w.waitClosed()
		}
	}
}

func (w *watchRec) isClosed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closed
}

func (w *watchRec) waitClosed() {
	select {
	case <-w.done:
	case <-time.After(5 * time.Second):
	}
}

// settle waits until every cacher has processed the last write to its prefix, then until no watch
// has received anything for a quiet period.
func (h *harness) settle() {
	deadline := time.Now().Add(10 * time.Second)
	for _, name := range h.order {
		r := h.resources[name]
		for time.Now().Before(deadline) {
			if h.cacheOff {
				if uint64(h.etcdRev.Load()) >= r.lastWrite {
					break
				}
				time.Sleep(500 * time.Microsecond)
				continue
			}
			if !r.CacheReady() {
				time.Sleep(time.Millisecond)
				continue
			}
			rv, err := r.CacheRV()
			if err == nil && rv >= r.lastWrite {
				break
			}
			time.Sleep(500 * time.Microsecond)
		}
	}
	quiet := 15 * time.Millisecond
	for {
		select {
		case <-h.activity:
			continue
		case <-time.After(quiet):
			return
		}
	}
}

// ---------------------------------------------------------------------------------------------
// Conversions to watchsim's JSON shapes.

// statusJSON is the Status the handler answers for err (endpoints/handlers/responsewriters
// ErrorToAPIStatus: an error that is not an API status is a 500 with no reason and the error's
// text as its message).
func statusJSON(err error) map[string]any {
	return statusFrom(responsewriters.ErrorToAPIStatus(err))
}

func statusFrom(st *metav1.Status) map[string]any {
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

func errResult(err error) map[string]any { return map[string]any{"error": statusJSON(err)} }

// modelContinue turns the real continue token (base64 JSON {v, rv, start}) into watchsim's
// "RV:KEY" form, KEY being the last key returned (start without its trailing \x00). keyPrefix is
// "/registry" + the request's key: the etcd3 store's (and the cacher's) start key is relative to
// the request's key prefix (storage.EncodeContinue), e.g. "/registry/pods/default" for a LIST of
// one namespace.
func modelContinue(token, keyPrefix string) string {
	if token == "" {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return "undecodable:" + token
	}
	var c struct {
		RV    int64  `json:"rv"`
		Start string `json:"start"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return "undecodable:" + token
	}
	key := keyPrefix + "/" + strings.TrimSuffix(c.Start, "\x00")
	for strings.Contains(key, "//") {
		key = strings.ReplaceAll(key, "//", "/")
	}
	return fmt.Sprintf("%d:%s", c.RV, key)
}

// initialEventsEndAnnotation is metav1.InitialEventsAnnotationKey (v0.27 does not name it).
const initialEventsEndAnnotation = "k8s.io/initial-events-end"

func eventJSON(ev watch.Event) map[string]any {
	switch ev.Type {
	case watch.Error:
		st, ok := ev.Object.(*metav1.Status)
		if !ok {
			return map[string]any{"type": "ERROR", "code": 500, "reason": "InternalError", "message": fmt.Sprintf("%T", ev.Object)}
		}
		v := statusFrom(st)
		v["type"] = "ERROR"
		return v
	case watch.Bookmark:
		m, _ := meta.Accessor(ev.Object)
		v := map[string]any{"type": "BOOKMARK", "resource_version": m.GetResourceVersion()}
		if m.GetAnnotations()[initialEventsEndAnnotation] == "true" {
			v["initial_events_end"] = true
		}
		return v
	default:
		m, _ := meta.Accessor(ev.Object)
		return map[string]any{"type": string(ev.Type), "name": m.GetName(), "namespace": m.GetNamespace(), "resource_version": m.GetResourceVersion()}
	}
}

// ---------------------------------------------------------------------------------------------
// Steps.

func (h *harness) resource(name string) (*resource, error) {
	r, ok := h.resources[name]
	if !ok {
		return nil, fmt.Errorf("unknown resource %q", name)
	}
	return r, nil
}

func rvOf(obj runtime.Object) string {
	m, _ := meta.Accessor(obj)
	return m.GetResourceVersion()
}

func (h *harness) noteWrite(r *resource, rv string) {
	if n, err := strconv.ParseUint(rv, 10, 64); err == nil && n > r.lastWrite {
		r.lastWrite = n
	}
}

func ns(s stepIn) string {
	if s.Namespace == "" {
		return "default"
	}
	return s.Namespace
}

func (h *harness) create(s stepIn) map[string]any {
	r, err := h.resource(s.Resource)
	if err != nil {
		return map[string]any{"harness_error": err.Error()}
	}
	obj := &example.Pod{ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: ns(s), Labels: s.Labels}}
	out := &example.Pod{}
	if err := r.reg.Create(context.Background(), objKey(r, ns(s), s.Name), obj, out); err != nil {
		return errResult(storeerr.InterpretCreateError(err, r.GR, s.Name))
	}
	h.noteWrite(r, rvOf(out))
	return map[string]any{"resource_version": rvOf(out)}
}

func (h *harness) update(s stepIn) map[string]any {
	r, err := h.resource(s.Resource)
	if err != nil {
		return map[string]any{"harness_error": err.Error()}
	}
	r.updates++
	gen := strconv.Itoa(r.updates)
	out := &example.Pod{}
	err = r.reg.Update(context.Background(), objKey(r, ns(s), s.Name), out,
		func(input runtime.Object, _ storage.ResponseMeta) (runtime.Object, *uint64, error) {
			p := input.(*example.Pod).DeepCopy()
			// Every update changes the object (an annotation, which no selector sees); `labels`
			// present replaces the whole label map.
			if p.Annotations == nil {
				p.Annotations = map[string]string{}
			}
			p.Annotations["watchsim-update"] = gen
			if s.Labels != nil {
				p.Labels = s.Labels
			}
			return p, nil, nil
		})
	if err != nil {
		return errResult(storeerr.InterpretUpdateError(err, r.GR, s.Name))
	}
	h.noteWrite(r, rvOf(out))
	return map[string]any{"resource_version": rvOf(out)}
}

func (h *harness) delete(s stepIn) map[string]any {
	r, err := h.resource(s.Resource)
	if err != nil {
		return map[string]any{"harness_error": err.Error()}
	}
	out := &example.Pod{}
	if err := r.reg.Delete(context.Background(), objKey(r, ns(s), s.Name), out); err != nil {
		return errResult(storeerr.InterpretDeleteError(err, r.GR, s.Name))
	}
	h.noteWrite(r, rvOf(out))
	return map[string]any{"resource_version": rvOf(out)}
}

// listOptions builds the request's ListOptions and applies the handler's defaulting and
// validation (endpoints/handlers/get.go ListResource), with the binary's WatchList gate.
func listOptions(s stepIn, watching bool, cont string) (metainternalversion.ListOptions, error) {
	opts := metainternalversion.ListOptions{Watch: watching, Limit: s.Limit, Continue: cont}
	if s.ResourceVersion != nil {
		opts.ResourceVersion = *s.ResourceVersion
	}
	if s.Match != "" {
		opts.ResourceVersionMatch = metav1.ResourceVersionMatch(s.Match)
	}
	if watching {
		opts.AllowWatchBookmarks = s.Bookmarks
		opts.SendInitialEvents = s.SendInitialEvents
		// watchsim's api.watch has no `match`: a streaming list is sent as client-go sends it
		// (reflector.go watchList: SendInitialEvents with resourceVersionMatch=NotOlderThan).
		if s.SendInitialEvents != nil && s.Match == "" {
			opts.ResourceVersionMatch = metav1.ResourceVersionMatchNotOlderThan
		}
	}
	gate := utilfeature.DefaultFeatureGate.Enabled(features.WatchList)
	metainternalversion.SetListOptionsDefaults(&opts, gate)
	if errs := metainternalversionvalidation.ValidateListOptions(&opts, gate); len(errs) > 0 {
		return opts, apierrors.NewInvalid(schema.GroupKind{Group: metav1.GroupName, Kind: "ListOptions"}, "", errs)
	}
	return opts, nil
}

func (h *harness) list(s stepIn) map[string]any {
	r, err := h.resource(s.Resource)
	if err != nil {
		return map[string]any{"harness_error": err.Error()}
	}
	cont := ""
	if s.Continue {
		cont = r.lastContinue
	}
	pred, perr := predicate(s)
	if perr != nil {
		return scenarioError(perr)
	}
	opts, err := listOptions(s, false, cont)
	if err != nil {
		return errResult(err)
	}
	pred.Limit = opts.Limit
	pred.Continue = opts.Continue
	key, recursive := requestKey(r, s, pred)
	sopts := storage.ListOptions{
		ResourceVersion:      opts.ResourceVersion,
		ResourceVersionMatch: opts.ResourceVersionMatch,
		Predicate:            pred,
		Recursive:            recursive,
	}
	list := &example.PodList{}
	type res struct {
		fromEtcd bool
		err      error
	}
	done := make(chan res, 1)
	go func() {
		fromEtcd, err := r.reg.GetList(context.Background(), key, sopts, list)
		done <- res{fromEtcd, err}
	}()
	// A LIST that waits for the cache (consistent read, RV above the cache) is woken by the
	// progress requester's 100 ms timer and times out after 3 s of the cacher's clock.
	got := awaitStepping(h, done)
	if got.err != nil {
		return errResult(storeerr.InterpretListError(got.err, r.GR))
	}
	served := "cache"
	if got.fromEtcd {
		served = "etcd"
	}
	names := []string{}
	for _, p := range list.Items {
		names = append(names, p.Name)
	}
	// As watchsim's `continue = true`: the token of the last successful LIST of this resource
	// (none when that LIST was complete).
	token := list.Continue
	r.lastContinue = token
	return map[string]any{
		"resource_version": list.ResourceVersion,
		"items":            len(list.Items),
		"names":            names,
		"continue":         modelContinue(token, "/registry"+key),
		"served_from":      served,
	}
}

func (h *harness) watch(s stepIn) map[string]any {
	r, err := h.resource(s.Resource)
	if err != nil {
		return map[string]any{"harness_error": err.Error()}
	}
	pred, perr := predicate(s)
	if perr != nil {
		return scenarioError(perr)
	}
	opts, err := listOptions(s, true, "")
	if err != nil {
		h.failedWatches[s.ID] = true
		return errResult(err)
	}
	pred.AllowWatchBookmarks = opts.AllowWatchBookmarks
	key, recursive := requestKey(r, s, pred)
	sopts := storage.ListOptions{
		ResourceVersion:   opts.ResourceVersion,
		Predicate:         pred,
		Recursive:         recursive,
		SendInitialEvents: opts.SendInitialEvents,
	}
	base, cancel := context.WithCancel(context.Background())
	var deadline time.Time
	if s.TimeoutMs > 0 {
		deadline = h.clk.Now().Add(time.Duration(s.TimeoutMs) * time.Millisecond)
	}
	ctx := deadlineCtx{Context: base, deadline: deadline}
	type res struct {
		w   watch.Interface
		err error
	}
	// Watch cache off: the etcd watchers open before the request (see awaitDirectWatch).
	var watchersBefore float64
	if h.cacheOff {
		watchersBefore, _ = etcdWatchers()
	}
	done := make(chan res, 1)
	go func() {
		w, err := r.reg.Watch(ctx, key, sopts)
		done <- res{w, err}
	}()
	got := awaitStepping(h, done)
	if got.err != nil {
		cancel()
		h.failedWatches[s.ID] = true
		return errResult(storeerr.InterpretWatchError(got.err, r.GR, ""))
	}
	rec := &watchRec{id: s.ID, w: got.w, cancel: cancel, deadline: deadline, done: make(chan struct{})}
	h.watches[s.ID] = rec
	h.watchIDs = append(h.watchIDs, s.ID)
	go func() {
		for ev := range got.w.ResultChan() {
			rec.mu.Lock()
			rec.events = append(rec.events, eventJSON(ev))
			rec.mu.Unlock()
			h.poke()
		}
		rec.mu.Lock()
		if !rec.unwatched {
			rec.events = append(rec.events, map[string]any{"type": "CLOSED"})
		}
		rec.closed = true
		rec.mu.Unlock()
		close(rec.done)
		h.poke()
	}()
	if h.cacheOff {
		h.awaitDirectWatch(rec, watchersBefore)
	}
	return map[string]any{"created": true}
}

// etcdWatchers reads the embedded etcd's watcher gauges (server/storage/mvcc/metrics.go, in
// the process's default Prometheus registry): the watchers open, and those not yet caught up
// with etcd's revision (unsynced: still replaying history).
func etcdWatchers() (total, unsynced float64) {
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		return 0, 0
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "etcd_debugging_mvcc_watcher_total":
				total += m.GetGauge().GetValue()
			case "etcd_debugging_mvcc_slow_watcher_total":
				unsynced += m.GetGauge().GetValue()
			}
		}
	}
	return total, unsynced
}

// awaitDirectWatch (watch cache off) waits until the etcd3 store's watch rec has opened its etcd
// watch (more etcd watchers than `before`) or ended, then until no etcd watcher is still
// replaying history, for at most 2 s of real time in all. The store opens its etcd watch in a
// goroutine after Watch returns (after its initial LIST when initial events are required), and
// etcd replays history every 100 ms of real time: without this wait the fake clock could reach
// the watch's deadline, or the next step unwatch it, before it has received what etcd sends it.
func (h *harness) awaitDirectWatch(rec *watchRec, before float64) {
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if total, _ := etcdWatchers(); total > before || rec.isClosed() {
			break
		}
		time.Sleep(time.Millisecond)
	}
	for time.Now().Before(deadline) {
		if _, unsynced := etcdWatchers(); unsynced == 0 || rec.isClosed() {
			break
		}
		time.Sleep(time.Millisecond)
	}
}

// get serves api.get as the registry's Store.Get does (registry/generic/registry/store.go:
// storage Get with GetOptions{ResourceVersion}, storeerr.InterpretGetError): through the
// Cacher (cacher.go Cacher.Get: RV unset: etcd; set, with a ready cache: the cache once it is
// that fresh, 3 s of the cacher's clock, then 504), or the etcd3 store with the watch cache off.
func (h *harness) get(s stepIn) map[string]any {
	r, err := h.resource(s.Resource)
	if err != nil {
		return map[string]any{"harness_error": err.Error()}
	}
	opts := storage.GetOptions{}
	if s.ResourceVersion != nil {
		opts.ResourceVersion = *s.ResourceVersion
	}
	out := &example.Pod{}
	type res struct {
		fromEtcd bool
		err      error
	}
	done := make(chan res, 1)
	go func() {
		fromEtcd, err := r.reg.Get(context.Background(), objKey(r, ns(s), s.Name), opts, out)
		done <- res{fromEtcd, err}
	}()
	got := awaitStepping(h, done)
	if got.err != nil {
		return errResult(storeerr.InterpretGetError(got.err, r.GR, s.Name))
	}
	served := "cache"
	if got.fromEtcd {
		served = "etcd"
	}
	return map[string]any{"name": out.Name, "namespace": out.Namespace, "resource_version": out.ResourceVersion, "served_from": served}
}

// predicate is the SelectionPredicate of a LIST or WATCH as the handler and the registry build
// it: endpoints/handlers/get.go ListResource parses `labelSelector` (labels.Parse) and
// `fieldSelector` (fields.ParseSelector, field labels converted by the scheme, which for a
// type without conversions accepts metadata.name and metadata.namespace only:
// runtime.DefaultMetaV1FieldSelectorConversion); the registry's default PredicateFunc matches
// with storage.DefaultNamespaceScopedAttr (labels, metadata.name, metadata.namespace). What
// watchsim's scenarios do not accept (another field, an operator other than =, ==, !=, a
// selector that does not parse) is an error of the case, as it is a scenario error there.
func predicate(s stepIn) (storage.SelectionPredicate, error) {
	pred := storage.SelectionPredicate{Label: labels.Everything(), Field: fields.Everything(), GetAttrs: storage.DefaultNamespaceScopedAttr}
	if s.LabelSelector != "" {
		l, err := labels.Parse(s.LabelSelector)
		if err != nil {
			return pred, fmt.Errorf("label_selector %q: %v", s.LabelSelector, err)
		}
		pred.Label = l
	}
	if s.FieldSelector != "" {
		f, err := fields.ParseSelector(s.FieldSelector)
		if err != nil {
			return pred, fmt.Errorf("field_selector %q: %v", s.FieldSelector, err)
		}
		for _, req := range f.Requirements() {
			if req.Field != "metadata.name" && req.Field != "metadata.namespace" {
				return pred, fmt.Errorf("field_selector %q: field label not supported: %s", s.FieldSelector, req.Field)
			}
			switch req.Operator {
			case selection.Equals, selection.DoubleEquals, selection.NotEquals:
			default:
				return pred, fmt.Errorf("field_selector %q: operator %s not supported", s.FieldSelector, req.Operator)
			}
		}
		pred.Field = f
	}
	return pred, nil
}

// scenarioError is the answer to a step watchsim rejects when it loads the scenario: runCase
// fails the whole case with it.
func scenarioError(err error) map[string]any { return map[string]any{"scenario_error": err.Error()} }

// requestKey is the storage key of a LIST or WATCH and whether it is recursive, as
// registry/generic/registry/store.go ListPredicate / WatchPredicate choose them: the namespace
// is the request's, else the one an exact metadata.namespace field selector names
// (MatchesSingleNamespace, if it is a valid namespace name); an exact metadata.name field
// selector with a namespace known reads that one key, not recursively (MatchesSingle; without a
// namespace NamespaceKeyFunc fails and the registry skips the optimisation). pred.Continue
// must be set (MatchesSingle* answer false for a continuation).
func requestKey(r *resource, s stepIn, pred storage.SelectionPredicate) (string, bool) {
	namespace := s.Namespace
	if namespace == "" {
		if sns, ok := pred.MatchesSingleNamespace(); ok && len(apivalidation.ValidateNamespaceName(sns, false)) == 0 {
			namespace = sns
		}
	}
	if name, ok := pred.MatchesSingle(); ok && namespace != "" {
		return r.Prefix + "/" + namespace + "/" + name, false
	}
	if namespace != "" {
		return r.Prefix + "/" + namespace, true
	}
	return r.Prefix, true
}

// awaitStepping waits for the answer of a request that may wait on the cacher's clock: each time
// it has not answered within 20 ms of real time, the fake clock moves 100 ms (the progress
// requester's period), for at most 10 s of the fake clock (the 3 s freshness wait ends before).
func awaitStepping[T any](h *harness, done <-chan T) T {
	waited := time.Duration(0)
	for {
		select {
		case v := <-done:
			return v
		case <-time.After(20 * time.Millisecond):
			if waited < 10*time.Second {
				h.clk.Step(100 * time.Millisecond)
				waited += 100 * time.Millisecond
				h.expireWatches()
			}
		}
	}
}

func (h *harness) poke() {
	select {
	case h.activity <- struct{}{}:
	default:
	}
}

func (h *harness) unwatch(s stepIn) map[string]any {
	w, ok := h.watches[s.ID]
	if !ok && h.failedWatches[s.ID] {
		return map[string]any{} // the client has no stream to close (as in watchsim)
	}
	if !ok {
		return map[string]any{"harness_error": "unknown watch " + s.ID}
	}
	w.mu.Lock()
	if !w.closed {
		w.unwatched = true
	}
	w.mu.Unlock()
	w.w.Stop()
	w.cancel()
	w.waitClosed()
	return map[string]any{}
}

func (h *harness) compactNow() map[string]any {
	resp, err := h.kv.Get(context.Background(), "compact-probe")
	if err != nil {
		return map[string]any{"harness_error": err.Error()}
	}
	if _, err := h.kv.Compact(context.Background(), resp.Header.Revision); err != nil {
		if !strings.Contains(err.Error(), "compacted") {
			return map[string]any{"harness_error": err.Error()}
		}
	}
	return map[string]any{}
}

func (h *harness) restartApiserver() map[string]any {
	if h.cacheOff {
		// No cache to rebuild; the store's watches end with the process.
		for _, id := range h.watchIDs {
			h.watches[id].w.Stop()
			h.watches[id].waitClosed()
		}
		for _, name := range h.order {
			h.resources[name].lastContinue = ""
		}
		return map[string]any{}
	}
	for _, name := range h.order {
		h.resources[name].StopCache()
	}
	for _, id := range h.watchIDs {
		h.watches[id].waitClosed()
	}
	for _, name := range h.order {
		r := h.resources[name]
		r.lastContinue = ""
		if err := r.StartCache(); err != nil {
			return map[string]any{"harness_error": err.Error()}
		}
	}
	return map[string]any{}
}

func (h *harness) step(s stepIn) map[string]any {
	switch s.Op {
	case "api.create":
		return h.create(s)
	case "api.update":
		return h.update(s)
	case "api.delete":
		return h.delete(s)
	case "api.list":
		return h.list(s)
	case "api.get":
		return h.get(s)
	case "api.watch":
		return h.watch(s)
	case "api.unwatch":
		return h.unwatch(s)
	case "fault.compact_now":
		return h.compactNow()
	case "fault.restart_apiserver":
		return h.restartApiserver()
	}
	return map[string]any{"harness_error": "unsupported op " + s.Op}
}

// timing: WATCHSIM_ORACLE_TIMING=1 prints where each case's real time went to stderr.
var timing = os.Getenv("WATCHSIM_ORACLE_TIMING") != ""

type phases struct {
	setup, advance, settle, step, teardown time.Duration
}

func (p *phases) add(d *time.Duration, since time.Time) { *d += time.Since(since) }

func runCase(v Version, c caseIn) (out caseOut) {
	out = caseOut{Name: c.Name, Script: []map[string]any{}, Watches: map[string][]map[string]any{}}
	h := &harness{version: v}
	var ph phases
	t0 := time.Now()
	defer func() {
		t := time.Now()
		h.teardown()
		ph.add(&ph.teardown, t)
		if timing {
			fmt.Fprintf(os.Stderr, "oracle timing %s: total %v setup %v advance %v settle %v step %v teardown %v\n",
				c.Name, time.Since(t0).Round(time.Millisecond), ph.setup.Round(time.Millisecond), ph.advance.Round(time.Millisecond),
				ph.settle.Round(time.Millisecond), ph.step.Round(time.Millisecond), ph.teardown.Round(time.Millisecond))
		}
	}()
	if err := h.setup(c); err != nil {
		out.Error = "setup: " + err.Error()
		return out
	}
	ph.add(&ph.setup, t0)
	steps := append([]stepIn(nil), c.Steps...)
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].AtMs < steps[j].AtMs })
	for _, s := range steps {
		t := time.Now()
		h.advanceTo(time.Duration(s.AtMs) * time.Millisecond)
		ph.add(&ph.advance, t)
		t = time.Now()
		h.settle()
		ph.add(&ph.settle, t)
		t = time.Now()
		result := h.step(s)
		ph.add(&ph.step, t)
		if e, ok := result["scenario_error"]; ok {
			out.Error = fmt.Sprintf("step at %s (%s): %v", s.At, s.Op, e)
			return out
		}
		t = time.Now()
		h.settle()
		ph.add(&ph.settle, t)
		out.Script = append(out.Script, map[string]any{"at": s.At, "op": s.Op, "result": result})
	}
	// watchsim's run ends at `duration`: what is due exactly then (a watch deadline) happens
	// after the end, so the oracle stops just before it.
	t := time.Now()
	h.advanceTo(time.Duration(c.DurationMs)*time.Millisecond - time.Millisecond)
	ph.add(&ph.advance, t)
	h.settle()
	for _, id := range h.watchIDs {
		w := h.watches[id]
		w.mu.Lock()
		out.Watches[id] = append([]map[string]any{}, w.events...)
		w.mu.Unlock()
	}
	return out
}

// Main reads the cases (the file named by the first argument, or stdin), runs each against v
// and writes one JSON line per case to stdout.
func Main(v Version) {
	klog.SetOutput(io.Discard)
	klog.LogToStderr(false)
	// Errors would still reach stderr (klog's stderrthreshold), e.g. the handler's "apiserver
	// received an error that is not an metav1.Status".
	klog.SetLogger(logr.Discard())
	var in io.Reader = os.Stdin
	if len(os.Args) > 1 && os.Args[1] != "-" {
		f, err := os.Open(os.Args[1])
		if err != nil {
			fmt.Fprintf(os.Stderr, "oracle: %v\n", err)
			os.Exit(2)
		}
		defer f.Close()
		in = f
	}
	var doc input
	if err := json.NewDecoder(in).Decode(&doc); err != nil {
		fmt.Fprintf(os.Stderr, "oracle: reading input: %v\n", err)
		os.Exit(2)
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	enc := json.NewEncoder(w)
	for _, c := range doc.Cases {
		if err := enc.Encode(runCase(v, c)); err != nil {
			fmt.Fprintf(os.Stderr, "oracle: %v\n", err)
			os.Exit(1)
		}
		w.Flush()
	}
}
