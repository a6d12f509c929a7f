// Command reflector runs client-go's real Reflector (k8s.io/client-go v0.37.2, tools/cache) against
// the real Cacher of k8s.io/apiserver v0.37.2 over an embedded etcd, under scripted faults, and
// records every request the reflector makes and its outcome (tests/reflector_conformance.rs
// compares them with watchsim's reflector model).
//
// Input (a file named as the first argument, or stdin): {"cases": [{"name", "resources":
// [{"name", "count"}], "duration_ms", "watch_cache" (default true), "clients": [{"name",
// "resource", "watch_list", "start_ms"}], "steps": [{"at", "at_ms", "op", ...}]}]}, the steps being
// watchsim's scripted steps (SPEC §3) with `for_ms` for a fault's `for`. Supported ops: api.create,
// api.update, api.delete, etcd.put / etcd.delete of an object key, fault.compact_now,
// fault.restart_apiserver, fault.partition_apiserver, fault.stall_apiserver, fault.heal,
// fault.restart_client, fault.disconnect_watch (watchsim's `[[faults.at]]` kind).
//
// Output: one JSON line per case: {"name", "requests": [...], "waits": [...], "clients": {...},
// "script": [...]}. A request: {"client", "at_ms", "kind": "list"|"watch", "rv", "match", "limit",
// "continue", "bookmarks", "sie", "timeout_s", "outcome", "events", "end"}; a wait: {"client",
// "at_ms", "wait_ms", "by": "run" (RunWithContext's loop) | "reflector" (the watch's 429 /
// connection-refused backoff) | "rest" (the REST client's Retry-After)}.
//
// What is real and what is the harness's (see notes.md, "Reflector oracle"):
//   - The reflector is client-go's, built by NewReflectorWithOptions with the fake clock; its
//     shared backoff (`wait.Backoff{800ms, x2, jitter 1.0, cap 30s}.DelayWithReset(clock, 2m)`) is
//     the real one, read out of the unexported `delayHandler` field and wrapped to record each
//     wait. RunWithContext's loop (`delayHandler.Until(ctx, immediate, sliding)`) waits on a real
//     timer (`wait`'s internal clock), so the harness runs the same loop itself on the fake clock:
//     ListAndWatchWithContext, then wait delayHandler(), again.
//   - The ListerWatcher is an adapter standing for kube-apiserver's handler and client-go's REST
//     client: ListOptions defaulting and validation (endpoints/handlers/get.go), the storage call
//     on the CacheDelegator (or the etcd3 store with the watch cache off), InterpretList/WatchError,
//     the watch's timeoutSeconds (the handler closes the stream), and the REST client's retries
//     of a 429 / 5xx carrying Retry-After (rest/with_retry.go IsNextRetry + checkWait: up to 10
//     retries after Retry-After seconds) on the fake clock. A request to an apiserver that is down,
//     or from a client cut off, fails with ECONNREFUSED (what watchsim models as "refused").
//   - Faults: an apiserver restart stops the cachers and closes every stream (a clean EOF to the
//     client), refuses connections for `for`, then builds new cachers; a partition breaks the
//     cachers' etcd watches and fails their storage calls until healed (the real cacher then goes
//     not ready and answers 429); a stall holds the cachers' etcd watch events (progress
//     notifications included) until healed.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/go-logr/logr"
	"go.etcd.io/etcd/client/v3/kubernetes"
	"go.etcd.io/etcd/server/v3/embed"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metainternalversionvalidation "k8s.io/apimachinery/pkg/apis/meta/internalversion/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/features"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/cacher"
	storeerr "k8s.io/apiserver/pkg/storage/errors"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	clientfeatures "k8s.io/client-go/features"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	testingclock "k8s.io/utils/clock/testing"

	shared "watchsim.oracle/kube137/harness"
)

// ---------------------------------------------------------------------------------------------
// Input and output.

type input struct {
	Cases []caseIn `json:"cases"`
}

type resourceIn struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

type clientIn struct {
	Name      string `json:"name"`
	Resource  string `json:"resource"`
	WatchList bool   `json:"watch_list"`
	StartMs   int64  `json:"start_ms"`
}

type caseIn struct {
	Name       string       `json:"name"`
	Resources  []resourceIn `json:"resources"`
	DurationMs int64        `json:"duration_ms"`
	WatchCache *bool        `json:"watch_cache"`
	Clients    []clientIn   `json:"clients"`
	Steps      []stepIn     `json:"steps"`
}

type stepIn struct {
	At        string `json:"at"`
	AtMs      int64  `json:"at_ms"`
	Op        string `json:"op"`
	Resource  string `json:"resource"`
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Key       string `json:"key"`
	Client    string `json:"client"`
	ForMs     int64  `json:"for_ms"`
	// internal: the end of an earlier fault's `for`
	heal bool
	up   bool
}

type reqRec struct {
	Client    string           `json:"client"`
	AtMs      float64          `json:"at_ms"`
	Kind      string           `json:"kind"`
	RV        string           `json:"rv"`
	Match     string           `json:"match,omitempty"`
	Limit     int64            `json:"limit"`
	Continue  bool             `json:"continue"`
	Bookmarks bool             `json:"bookmarks"`
	SIE       *bool            `json:"sie,omitempty"`
	TimeoutS  int64            `json:"timeout_s,omitempty"`
	Outcome   map[string]any   `json:"outcome"`
	Events    []map[string]any `json:"events,omitempty"`
	End       string           `json:"end,omitempty"`
	EndAtMs   float64          `json:"end_at_ms,omitempty"`
}

type waitRec struct {
	Client string  `json:"client"`
	AtMs   float64 `json:"at_ms"`
	WaitMs float64 `json:"wait_ms"`
	By     string  `json:"by"`
}

type clientEnd struct {
	LastSyncRV string   `json:"last_sync_rv"`
	Store      []string `json:"store"`
}

type caseOut struct {
	Name     string               `json:"name"`
	Requests []*reqRec            `json:"requests"`
	Waits    []waitRec            `json:"waits"`
	Clients  map[string]clientEnd `json:"clients"`
	Script   []map[string]any     `json:"script"`
	Error    string               `json:"error,omitempty"`
}

// ---------------------------------------------------------------------------------------------
// client-go's feature gates: WatchListClient per reflector (it is read once, in
// NewReflectorWithOptions); everything else as client-go's defaults.

type clientGates struct {
	base      clientfeatures.Gates
	watchList atomic.Bool
}

func (g *clientGates) Enabled(f clientfeatures.Feature) bool {
	if f == clientfeatures.WatchListClient {
		return g.watchList.Load()
	}
	return g.base.Enabled(f)
}

var gates = &clientGates{base: clientfeatures.FeatureGates()}

func init() {
	gates.watchList.Store(true) // client-go 1.35+ default (known_features.go)
	clientfeatures.ReplaceFeatureGates(gates)
}

// ---------------------------------------------------------------------------------------------
// The storage the cacher reads: etcd3, with a partition and a stall the harness switches.

type gatedStorage struct {
	storage.Interface
	mu          sync.Mutex
	partitioned bool
	stalled     bool
	changed     chan struct{} // closed and replaced on every change
	watches     map[*gatedWatch]struct{}
	lists       int
}

var errPartitioned = errors.New("watchsim oracle: apiserver partitioned from etcd")

func newGatedStorage(s storage.Interface) *gatedStorage {
	return &gatedStorage{Interface: s, changed: make(chan struct{}), watches: map[*gatedWatch]struct{}{}}
}

func (g *gatedStorage) set(partitioned, stalled bool) {
	g.mu.Lock()
	g.partitioned, g.stalled = partitioned, stalled
	close(g.changed)
	g.changed = make(chan struct{})
	var broken []*gatedWatch
	if partitioned {
		for w := range g.watches {
			broken = append(broken, w)
		}
	}
	g.mu.Unlock()
	for _, w := range broken {
		w.breakOnce.Do(func() { close(w.broken) })
	}
}

func (g *gatedStorage) state() (bool, bool, chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.partitioned, g.stalled, g.changed
}

func (g *gatedStorage) listCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lists
}

func (g *gatedStorage) GetList(ctx context.Context, key string, opts storage.ListOptions, listObj runtime.Object) error {
	g.mu.Lock()
	g.lists++
	p := g.partitioned
	g.mu.Unlock()
	if p {
		return errPartitioned
	}
	return g.Interface.GetList(ctx, key, opts, listObj)
}

func (g *gatedStorage) GetCurrentResourceVersion(ctx context.Context) (uint64, error) {
	if p, _, _ := g.state(); p {
		return 0, errPartitioned
	}
	return g.Interface.GetCurrentResourceVersion(ctx)
}

func (g *gatedStorage) Watch(ctx context.Context, key string, opts storage.ListOptions) (watch.Interface, error) {
	if p, _, _ := g.state(); p {
		return nil, errPartitioned
	}
	inner, err := g.Interface.Watch(ctx, key, opts)
	if err != nil {
		return nil, err
	}
	w := &gatedWatch{g: g, inner: inner, out: make(chan watch.Event), stop: make(chan struct{}), broken: make(chan struct{})}
	g.mu.Lock()
	g.watches[w] = struct{}{}
	g.mu.Unlock()
	go w.run()
	return w, nil
}

// gatedWatch forwards the etcd3 watch to the cacher in order, holding events while stalled,
// ending the stream when the apiserver is partitioned.
type gatedWatch struct {
	g         *gatedStorage
	inner     watch.Interface
	out       chan watch.Event
	stopOnce  sync.Once
	stop      chan struct{}
	breakOnce sync.Once
	broken    chan struct{}
}

func (w *gatedWatch) Stop() {
	w.stopOnce.Do(func() { close(w.stop) })
}

func (w *gatedWatch) ResultChan() <-chan watch.Event { return w.out }

func (w *gatedWatch) run() {
	defer func() {
		w.inner.Stop()
		w.g.mu.Lock()
		delete(w.g.watches, w)
		w.g.mu.Unlock()
		close(w.out)
	}()
	in := w.inner.ResultChan()
	var q []watch.Event
	for {
		_, stalled, changed := w.g.state()
		var send chan watch.Event
		var next watch.Event
		if !stalled && len(q) > 0 {
			send, next = w.out, q[0]
		}
		if in == nil && len(q) == 0 {
			return
		}
		select {
		case ev, ok := <-in:
			if !ok {
				in = nil
				continue
			}
			q = append(q, ev)
		case send <- next:
			q = q[1:]
		case <-changed:
		case <-w.broken:
			return
		case <-w.stop:
			return
		}
	}
}

// ---------------------------------------------------------------------------------------------
// The harness of one case.

type resource struct {
	name      string
	gr        schema.GroupResource
	prefix    string
	store     storage.Interface
	gated     *gatedStorage
	compactor interface{ Stop() }
	cacher    *cacher.Cacher
	delegator *cacher.CacheDelegator
	lastWrite uint64
	updates   int
}

type harness struct {
	clk       *testingclock.FakeClock
	start     time.Time
	etcd      *embed.Etcd
	client    *kubernetes.Client
	cacheOn   bool
	resources map[string]*resource
	order     []string

	mu        sync.Mutex
	down      bool
	clients   map[string]*client
	clientIDs []string
	requests  []*reqRec
	waits     []waitRec
	activity  chan struct{}
	lastPoke  time.Time
}

func (h *harness) now() time.Duration { return h.clk.Since(h.start) }

func (h *harness) nowMs() float64 { return float64(h.now()) / float64(time.Millisecond) }

func (h *harness) poke() {
	h.mu.Lock()
	h.lastPoke = time.Now()
	h.mu.Unlock()
	select {
	case h.activity <- struct{}{}:
	default:
	}
}

func (h *harness) isDown() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.down
}

func (h *harness) objKey(r *resource, ns, name string) string {
	return r.prefix + "/" + ns + "/" + name
}

func (h *harness) setup(c caseIn) error {
	h.clk = testingclock.NewFakeClock(time.Now())
	h.start = h.clk.Now()
	h.cacheOn = c.WatchCache == nil || *c.WatchCache
	h.resources = map[string]*resource{}
	h.clients = map[string]*client{}
	h.activity = make(chan struct{}, 1)
	e, cl, _, err := shared.StartEtcd()
	if err != nil {
		return err
	}
	h.etcd, h.client = e, cl
	for _, ri := range c.Resources {
		s, comp, err := shared.NewStore(h.client, h.clk, ri.Name)
		if err != nil {
			return err
		}
		r := &resource{name: ri.Name, gr: schema.GroupResource{Resource: ri.Name}, prefix: "/" + ri.Name, store: s, compactor: comp}
		h.resources[ri.Name] = r
		h.order = append(h.order, ri.Name)
		for i := 0; i < ri.Count; i++ {
			name := fmt.Sprintf("%s-%06d", ri.Name, i)
			obj := &example.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
			out := &example.Pod{}
			if err := s.Create(context.Background(), h.objKey(r, "default", name), obj, out, 0); err != nil {
				return fmt.Errorf("initial create %s: %v", name, err)
			}
			h.noteWrite(r, out.ResourceVersion)
		}
	}
	if h.cacheOn {
		for _, name := range h.order {
			if err := h.startCacher(h.resources[name]); err != nil {
				return err
			}
		}
	}
	return nil
}

// startCacher builds a resource's cacher over a gated view of its etcd3 store and waits until it
// is ready. The cacher's own reflector is built with client-go's default gates (WatchListClient on).
func (h *harness) startCacher(r *resource) error {
	r.gated = newGatedStorage(r.store)
	gates.watchList.Store(true)
	c, err := shared.NewCacher(r.gated, r.name, h.clk)
	if err != nil {
		return err
	}
	r.cacher = c
	r.delegator = cacher.NewCacheDelegator(c, r.gated)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.Wait(ctx)
}

func (h *harness) teardown() {
	for _, id := range h.clientIDs {
		c := h.clients[id]
		c.cancel()
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
		}
	}
	for _, name := range h.order {
		r := h.resources[name]
		if r.delegator != nil {
			r.delegator.Stop()
		}
		if r.compactor != nil {
			r.compactor.Stop()
		}
	}
	if h.client != nil {
		h.client.Close()
	}
	if h.etcd != nil {
		dir := h.etcd.Config().Dir
		h.etcd.Close()
		os.RemoveAll(dir)
	}
}

func (h *harness) noteWrite(r *resource, rv string) {
	if n, err := strconv.ParseUint(rv, 10, 64); err == nil && n > r.lastWrite {
		r.lastWrite = n
	}
}

// ---------------------------------------------------------------------------------------------
// One client: a real Reflector and the adapter it lists and watches through.

type client struct {
	h     *harness
	cfg   clientIn
	res   *resource
	refl  *cache.Reflector
	store cache.Store
	delay wait.DelayFunc

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	wake     time.Duration // fake time the reflector wakes from a wait; 0 = none
	inCall   int
	cutUntil time.Duration
	watch    *clientWatch
	inRun    bool
}

// connRefused is the error a dial to a closed port gives (utilnet.IsConnectionRefused).
func connRefused(verb string) error {
	return &url.Error{Op: verb, URL: "https://apiserver/api/v1/pods",
		Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
}

func (h *harness) newClient(cfg clientIn) (*client, error) {
	r, ok := h.resources[cfg.Resource]
	if !ok {
		return nil, fmt.Errorf("client %s: unknown resource %q", cfg.Name, cfg.Resource)
	}
	c := &client{h: h, cfg: cfg, res: r, done: make(chan struct{})}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.store = cache.NewStore(cache.MetaNamespaceKeyFunc)
	gates.watchList.Store(cfg.WatchList)
	c.refl = cache.NewReflectorWithOptions(c, &example.Pod{}, c.store, cache.ReflectorOptions{Name: cfg.Name, Clock: h.clk})
	gates.watchList.Store(true)
	if err := c.wrapDelay(); err != nil {
		return nil, err
	}
	return c, nil
}

// wrapDelay replaces the reflector's unexported delayHandler (the shared backoff of
// NewReflectorWithOptions: DelayWithReset(clock, 2m)) by a wrapper that records each wait.
func (c *client) wrapDelay() error {
	f := reflect.ValueOf(c.refl).Elem().FieldByName("delayHandler")
	if !f.IsValid() || f.Type() != reflect.TypeOf(wait.DelayFunc(nil)) {
		return fmt.Errorf("client-go's Reflector has no delayHandler wait.DelayFunc field")
	}
	p := (*wait.DelayFunc)(unsafe.Pointer(f.UnsafeAddr()))
	orig := *p
	wrapped := func() time.Duration {
		d := orig()
		c.mu.Lock()
		by := "reflector"
		if c.inRun {
			by = "run"
		}
		c.wake = c.h.now() + d
		c.mu.Unlock()
		c.h.noteWait(c, d, by)
		return d
	}
	*p = wrapped
	c.delay = wrapped
	return nil
}

func (h *harness) noteWait(c *client, d time.Duration, by string) {
	h.mu.Lock()
	h.waits = append(h.waits, waitRec{Client: c.cfg.Name, AtMs: h.nowMs(), WaitMs: float64(d) / float64(time.Millisecond), By: by})
	h.mu.Unlock()
	h.poke()
}

// run is RunWithContext's loop (reflector.go: delayHandler.Until(ctx, immediate=true,
// sliding=true, ListAndWatch)) on the fake clock.
func (c *client) run() {
	defer close(c.done)
	for {
		_ = c.refl.ListAndWatchWithContext(c.ctx)
		if c.ctx.Err() != nil {
			return
		}
		c.mu.Lock()
		c.inRun = true
		c.mu.Unlock()
		d := c.delay()
		c.mu.Lock()
		c.inRun = false
		c.mu.Unlock()
		select {
		case <-c.ctx.Done():
			return
		case <-c.h.clk.After(d):
		}
	}
}

func (c *client) beginCall() {
	c.mu.Lock()
	c.inCall++
	c.wake = 0
	c.mu.Unlock()
	c.h.poke()
}

func (c *client) endCall() {
	c.mu.Lock()
	c.inCall--
	c.mu.Unlock()
	c.h.poke()
}

func (c *client) cutOff() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.h.now() < c.cutUntil
}

func (h *harness) record(c *client, kind string, opts metav1.ListOptions) *reqRec {
	rec := &reqRec{Client: c.cfg.Name, AtMs: h.nowMs(), Kind: kind, RV: opts.ResourceVersion,
		Match: string(opts.ResourceVersionMatch), Limit: opts.Limit, Continue: opts.Continue != "",
		Bookmarks: opts.AllowWatchBookmarks, SIE: opts.SendInitialEvents}
	if opts.TimeoutSeconds != nil {
		rec.TimeoutS = *opts.TimeoutSeconds
	}
	h.mu.Lock()
	h.requests = append(h.requests, rec)
	h.mu.Unlock()
	return rec
}

func setOutcome(h *harness, rec *reqRec, o map[string]any) {
	h.mu.Lock()
	rec.Outcome = o
	h.mu.Unlock()
}

func errOutcome(err error) map[string]any {
	if _, ok := err.(apierrors.APIStatus); ok {
		return map[string]any{"error": shared.StatusJSON(err)}
	}
	var errno syscall.Errno
	if errors.As(err, &errno) && errno == syscall.ECONNREFUSED {
		return map[string]any{"error": map[string]any{"code": 0, "reason": "ConnectionRefused"}}
	}
	return map[string]any{"error": map[string]any{"code": 0, "reason": "Other", "message": err.Error()}}
}

// restRetryAfter: rest/with_retry.go IsNextRetry with checkWait: a 429 or 5xx whose Status
// carries RetryAfterSeconds (the handler's Retry-After header, responsewriters.ErrorNegotiated).
func restRetryAfter(err error) (time.Duration, bool) {
	se, ok := err.(apierrors.APIStatus)
	if !ok {
		return 0, false
	}
	st := se.Status()
	if st.Code != 429 && st.Code < 500 {
		return 0, false
	}
	if st.Details == nil || st.Details.RetryAfterSeconds <= 0 {
		return 0, false
	}
	return time.Duration(st.Details.RetryAfterSeconds) * time.Second, true
}

// maxRetries: rest/request.go NewRequest (`maxRetries: 10`).
const maxRetries = 10

// requestOptions applies the handler's defaulting and validation (endpoints/handlers/get.go);
// a watch request carries `watch=true` (the REST client's Watch()).
func requestOptions(in metav1.ListOptions, watching bool) (metainternalversion.ListOptions, error) {
	var opts metainternalversion.ListOptions
	if err := metainternalversion.Convert_v1_ListOptions_To_internalversion_ListOptions(&in, &opts, nil); err != nil {
		return opts, apierrors.NewBadRequest(err.Error())
	}
	opts.Watch = watching
	gate := utilfeature.DefaultFeatureGate.Enabled(features.WatchList)
	metainternalversion.SetListOptionsDefaults(&opts, gate)
	if errs := metainternalversionvalidation.ValidateListOptions(&opts, gate); len(errs) > 0 {
		return opts, apierrors.NewInvalid(schema.GroupKind{Group: metav1.GroupName, Kind: "ListOptions"}, "", errs)
	}
	return opts, nil
}

// withRetries runs one REST call with client-go's Retry-After retries on the fake clock.
func (c *client) withRetries(ctx context.Context, attempt func() error) error {
	for retries := 0; ; retries++ {
		err := attempt()
		wait, ok := restRetryAfter(err)
		if !ok || retries >= maxRetries {
			return err
		}
		c.mu.Lock()
		c.wake = c.h.now() + wait
		c.mu.Unlock()
		c.h.noteWait(c, wait, "rest")
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.h.clk.After(wait):
		}
	}
}

// List implements cache.ListerWatcher.
func (c *client) List(opts metav1.ListOptions) (runtime.Object, error) {
	return c.ListWithContext(context.Background(), opts)
}

// Watch implements cache.ListerWatcher.
func (c *client) Watch(opts metav1.ListOptions) (watch.Interface, error) {
	return c.WatchWithContext(context.Background(), opts)
}

// ListWithContext implements cache.ListerWatcherWithContext.
func (c *client) ListWithContext(ctx context.Context, in metav1.ListOptions) (runtime.Object, error) {
	var result runtime.Object
	err := c.withRetries(ctx, func() error {
		rec := c.h.record(c, "list", in)
		c.beginCall()
		defer c.endCall()
		obj, err := c.serveList(ctx, in)
		if err != nil {
			setOutcome(c.h, rec, errOutcome(err))
			return err
		}
		m, _ := meta.ListAccessor(obj)
		setOutcome(c.h, rec, map[string]any{"items": meta.LenList(obj), "resource_version": m.GetResourceVersion(), "continue": m.GetContinue() != ""})
		result = obj
		return nil
	})
	if err != nil {
		return nil, err
	}
	return result, nil
}

func (c *client) serveList(ctx context.Context, in metav1.ListOptions) (runtime.Object, error) {
	if c.h.isDown() || c.cutOff() {
		return nil, connRefused("Get")
	}
	opts, err := requestOptions(in, false)
	if err != nil {
		return nil, err
	}
	pred := storage.Everything
	pred.Limit = opts.Limit
	pred.Continue = opts.Continue
	sopts := storage.ListOptions{ResourceVersion: opts.ResourceVersion, ResourceVersionMatch: opts.ResourceVersionMatch, Predicate: pred, Recursive: true}
	list := &example.PodList{}
	var lerr error
	if c.h.cacheOn {
		lerr = c.res.delegator.GetList(ctx, c.res.prefix, sopts, list)
	} else {
		lerr = c.res.store.GetList(ctx, c.res.prefix, sopts, list)
	}
	if lerr != nil {
		return nil, asStatus(storeerr.InterpretListError(lerr, c.res.gr))
	}
	return list, nil
}

// asStatus: what the handler answers for an error (responsewriters.ErrorNegotiated →
// ErrorToAPIStatus): an API status as it is, anything else a 500 InternalError.
func asStatus(err error) error {
	if _, ok := err.(apierrors.APIStatus); ok {
		return err
	}
	return apierrors.NewInternalError(err)
}

type deadlineCtx struct {
	context.Context
	deadline time.Time
}

func (d deadlineCtx) Deadline() (time.Time, bool) { return d.deadline, !d.deadline.IsZero() }

// WatchWithContext implements cache.ListerWatcherWithContext.
func (c *client) WatchWithContext(ctx context.Context, in metav1.ListOptions) (watch.Interface, error) {
	var result watch.Interface
	err := c.withRetries(ctx, func() error {
		rec := c.h.record(c, "watch", in)
		c.beginCall()
		defer c.endCall()
		w, err := c.serveWatch(ctx, in, rec)
		if err != nil {
			setOutcome(c.h, rec, errOutcome(err))
			return err
		}
		setOutcome(c.h, rec, map[string]any{"created": true})
		result = w
		return nil
	})
	if err != nil {
		return nil, err
	}
	return result, nil
}

func (c *client) serveWatch(ctx context.Context, in metav1.ListOptions, rec *reqRec) (watch.Interface, error) {
	if c.h.isDown() || c.cutOff() {
		return nil, connRefused("Get")
	}
	opts, err := requestOptions(in, true)
	if err != nil {
		return nil, err
	}
	pred := storage.Everything
	pred.AllowWatchBookmarks = opts.AllowWatchBookmarks
	sopts := storage.ListOptions{ResourceVersion: opts.ResourceVersion, Predicate: pred, Recursive: true, SendInitialEvents: opts.SendInitialEvents}
	base, cancel := context.WithCancel(context.Background())
	var deadline time.Time
	if opts.TimeoutSeconds != nil && *opts.TimeoutSeconds > 0 {
		deadline = c.h.clk.Now().Add(time.Duration(*opts.TimeoutSeconds) * time.Second)
	}
	wctx := deadlineCtx{Context: base, deadline: deadline}
	var inner watch.Interface
	if c.h.cacheOn {
		inner, err = c.res.delegator.Watch(wctx, c.res.prefix, sopts)
	} else {
		inner, err = c.res.store.Watch(wctx, c.res.prefix, sopts)
	}
	if err != nil {
		cancel()
		return nil, asStatus(storeerr.InterpretWatchError(err, c.res.gr, ""))
	}
	w := &clientWatch{c: c, rec: rec, inner: inner, cancel: cancel, deadline: deadline,
		out: make(chan watch.Event), stop: make(chan struct{}), closeCh: make(chan struct{})}
	c.mu.Lock()
	c.watch = w
	c.mu.Unlock()
	go w.run()
	return w, nil
}

// clientWatch is the stream the reflector reads: the storage watch, ended by the handler at its
// timeout or by a fault (a clean close for the client), recording every event it delivers.
type clientWatch struct {
	c         *client
	rec       *reqRec
	inner     watch.Interface
	cancel    context.CancelFunc
	deadline  time.Time
	out       chan watch.Event
	stopOnce  sync.Once
	stop      chan struct{}
	closeOnce sync.Once
	closeCh   chan struct{}
	endReason string
}

func (w *clientWatch) Stop() {
	w.stopOnce.Do(func() { close(w.stop) })
}

func (w *clientWatch) ResultChan() <-chan watch.Event { return w.out }

// serverClose ends the stream from the server's side (handler timeout, restart, disconnect).
func (w *clientWatch) serverClose(reason string) {
	w.closeOnce.Do(func() {
		w.c.h.mu.Lock()
		w.endReason = reason
		w.c.h.mu.Unlock()
		close(w.closeCh)
	})
}

func (w *clientWatch) end(h *harness, how string) {
	h.mu.Lock()
	if w.rec.End == "" {
		w.rec.End = how
		w.rec.EndAtMs = h.nowMs()
	}
	h.mu.Unlock()
}

func (w *clientWatch) run() {
	h := w.c.h
	defer func() {
		w.inner.Stop()
		w.cancel()
		close(w.out)
		w.c.mu.Lock()
		if w.c.watch == w {
			w.c.watch = nil
		}
		w.c.mu.Unlock()
		h.poke()
	}()
	in := w.inner.ResultChan()
	for {
		select {
		case ev, ok := <-in:
			if !ok {
				w.end(h, "closed")
				return
			}
			// What the client decodes: the object itself, not the cacher's caching wrapper.
			if co, ok := ev.Object.(runtime.CacheableObject); ok {
				ev.Object = co.GetObject()
			}
			ev.Object = ev.Object.DeepCopyObject()
			h.mu.Lock()
			w.rec.Events = append(w.rec.Events, shared.EventJSON(ev))
			h.mu.Unlock()
			select {
			case w.out <- ev:
				h.poke()
			case <-w.stop:
				w.end(h, "client_stop")
				return
			case <-w.closeCh:
				w.end(h, w.reasonLocked())
				return
			}
		case <-w.stop:
			w.end(h, "client_stop")
			return
		case <-w.closeCh:
			w.end(h, w.reasonLocked())
			return
		}
	}
}

func (w *clientWatch) reasonLocked() string {
	w.c.h.mu.Lock()
	defer w.c.h.mu.Unlock()
	return w.endReason
}

// ---------------------------------------------------------------------------------------------
// Time and settling.

const (
	tick       = 250 * time.Millisecond
	callStep   = 100 * time.Millisecond
	quiet      = 15 * time.Millisecond
	blockedFor = 20 * time.Millisecond
)

// settle waits until the cachers have every write and nothing moved for `quiet` of real time:
// no reflector wake-up is due (one due makes a request at once), every request in flight is
// blocked on the fake clock.
func (h *harness) settle() {
	deadline := time.Now().Add(10 * time.Second)
	if h.cacheOn && !h.isDown() {
		for _, name := range h.order {
			r := h.resources[name]
			if p, s, _ := r.gated.state(); p || s {
				continue
			}
			for time.Now().Before(deadline) {
				if r.cacher.Ready() {
					if rv, err := r.cacher.LastSyncResourceVersion(); err == nil && rv >= r.lastWrite {
						break
					}
				}
				time.Sleep(500 * time.Microsecond)
			}
		}
	}
	for time.Now().Before(deadline) {
		select {
		case <-h.activity:
			continue
		case <-time.After(quiet):
		}
		if h.wakeDue() {
			continue
		}
		return
	}
}

// wakeDue: some reflector's wait has ended and it has not made its next request yet.
func (h *harness) wakeDue() bool {
	now := h.now()
	for _, id := range h.clientIDs {
		c := h.clients[id]
		c.mu.Lock()
		due := c.wake != 0 && c.wake <= now && c.ctx.Err() == nil
		c.mu.Unlock()
		if due {
			return true
		}
	}
	return false
}

// advanceTo moves the fake clock to t (since the start): to each reflector wake-up exactly, in
// ticks while a watch is open (the cacher's bookmark timer), in 100 ms steps while a request
// waits on the clock (the cacher's freshness wait and progress requester), closing watches at
// their deadline.
func (h *harness) advanceTo(t time.Duration) {
	for {
		h.settle()
		now := h.now()
		if now >= t {
			return
		}
		next := t
		for _, id := range h.clientIDs {
			c := h.clients[id]
			c.mu.Lock()
			if c.inCall > 0 && now+callStep < next {
				next = now + callStep
			}
			if c.wake > now && c.wake < next {
				next = c.wake
			}
			if w := c.watch; w != nil {
				if now+tick < next {
					next = now + tick
				}
				if !w.deadline.IsZero() {
					if d := w.deadline.Sub(h.start); d > now && d < next {
						next = d
					}
				}
			}
			c.mu.Unlock()
		}
		h.clk.SetTime(h.start.Add(next))
		time.Sleep(300 * time.Microsecond)
		h.expireWatches()
	}
}

func (h *harness) expireWatches() {
	now := h.clk.Now()
	for _, id := range h.clientIDs {
		c := h.clients[id]
		c.mu.Lock()
		w := c.watch
		c.mu.Unlock()
		if w != nil && !w.deadline.IsZero() && !now.Before(w.deadline) {
			w.serverClose("deadline")
		}
	}
}

// ---------------------------------------------------------------------------------------------
// Steps.

func (h *harness) resource(name string) (*resource, error) {
	if name == "" {
		name = h.order[0]
	}
	r, ok := h.resources[name]
	if !ok {
		return nil, fmt.Errorf("unknown resource %q", name)
	}
	return r, nil
}

func nsOf(s stepIn) string {
	if s.Namespace == "" {
		return "default"
	}
	return s.Namespace
}

func touch(gen string) func(runtime.Object, storage.ResponseMeta) (runtime.Object, *uint64, error) {
	return func(input runtime.Object, _ storage.ResponseMeta) (runtime.Object, *uint64, error) {
		p := input.(*example.Pod).DeepCopy()
		if p.Labels == nil {
			p.Labels = map[string]string{}
		}
		p.Labels["watchsim-update"] = gen
		return p, nil, nil
	}
}

// write performs api.create / api.update / api.delete through the apiserver (refused while it is
// down), or etcd.put / etcd.delete straight on the etcd3 store (create-or-update of the object).
func (h *harness) write(s stepIn) map[string]any {
	direct := strings.HasPrefix(s.Op, "etcd.")
	var r *resource
	var err error
	ns, name := nsOf(s), s.Name
	if direct {
		// /registry/<resource>/<ns>/<name>
		parts := strings.Split(strings.TrimPrefix(s.Key, "/registry/"), "/")
		if len(parts) != 3 {
			return map[string]any{"harness_error": "etcd key is not an object key: " + s.Key}
		}
		r, err = h.resource(parts[0])
		ns, name = parts[1], parts[2]
	} else {
		r, err = h.resource(s.Resource)
		if err == nil && h.isDown() {
			return map[string]any{"error": map[string]any{"code": 0, "reason": "ConnectionRefused"}}
		}
	}
	if err != nil {
		return map[string]any{"harness_error": err.Error()}
	}
	key := h.objKey(r, ns, name)
	var st storage.Interface = r.store
	if !direct && h.cacheOn {
		st = r.delegator
	}
	out := &example.Pod{}
	ctx := context.Background()
	op := strings.TrimPrefix(strings.TrimPrefix(s.Op, "etcd."), "api.")
	switch op {
	case "create", "put":
		obj := &example.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
		err = st.Create(ctx, key, obj, out, 0)
		if op == "put" && storage.IsExist(err) {
			r.updates++
			err = st.GuaranteedUpdate(ctx, key, out, false, nil, touch(strconv.Itoa(r.updates)), nil)
		}
		if err != nil {
			return map[string]any{"error": shared.StatusJSON(storeerr.InterpretCreateError(err, r.gr, name))}
		}
	case "update":
		r.updates++
		if err = st.GuaranteedUpdate(ctx, key, out, false, nil, touch(strconv.Itoa(r.updates)), nil); err != nil {
			return map[string]any{"error": shared.StatusJSON(storeerr.InterpretUpdateError(err, r.gr, name))}
		}
	case "delete":
		if err = st.Delete(ctx, key, out, nil, storage.ValidateAllObjectFunc, nil, storage.DeleteOptions{}); err != nil {
			return map[string]any{"error": shared.StatusJSON(storeerr.InterpretDeleteError(err, r.gr, name))}
		}
	default:
		return map[string]any{"harness_error": "unsupported op " + s.Op}
	}
	h.noteWrite(r, out.ResourceVersion)
	return map[string]any{"resource_version": out.ResourceVersion}
}

func (h *harness) compactNow() map[string]any {
	resp, err := h.client.Client.Get(context.Background(), "compact-probe")
	if err != nil {
		return map[string]any{"harness_error": err.Error()}
	}
	if _, err := h.client.Client.Compact(context.Background(), resp.Header.Revision); err != nil && !strings.Contains(err.Error(), "compacted") {
		return map[string]any{"harness_error": err.Error()}
	}
	return map[string]any{}
}

func (h *harness) closeClientWatches(reason string) {
	for _, id := range h.clientIDs {
		c := h.clients[id]
		c.mu.Lock()
		w := c.watch
		c.mu.Unlock()
		if w != nil {
			w.serverClose(reason)
		}
	}
}

// restartApiserver: the process dies (every stream ends, new connections are refused); its
// cachers start cold when it comes back (`up`).
func (h *harness) restartApiserver() map[string]any {
	h.mu.Lock()
	h.down = true
	h.mu.Unlock()
	h.closeClientWatches("restart")
	if h.cacheOn {
		for _, name := range h.order {
			h.resources[name].delegator.Stop()
		}
	}
	return map[string]any{}
}

func (h *harness) apiserverUp() map[string]any {
	// A new process builds new etcd3 stores (a store enables its size estimator only once).
	for _, name := range h.order {
		r := h.resources[name]
		s, comp, err := shared.NewStore(h.client, h.clk, name)
		if err != nil {
			return map[string]any{"harness_error": err.Error()}
		}
		r.compactor.Stop()
		r.store, r.compactor = s, comp
		if h.cacheOn {
			if err := h.startCacher(r); err != nil {
				return map[string]any{"harness_error": err.Error()}
			}
		}
	}
	h.mu.Lock()
	h.down = false
	h.mu.Unlock()
	return map[string]any{}
}

// partition cuts the cachers off etcd: their watches end and their storage calls fail. The real
// cacher's reflector then returns from ListAndWatch (not ready), and its wait.Until loop (1 s of
// real time) terminates every watcher and lists again, failing until healed.
func (h *harness) partition() map[string]any {
	if !h.cacheOn {
		return map[string]any{"harness_error": "partition needs the watch cache"}
	}
	before := map[string]int{}
	for _, name := range h.order {
		r := h.resources[name]
		before[name] = r.gated.listCount()
		r.gated.set(true, false)
	}
	// The cacher's reflector returns from ListAndWatch at once (not ready); its wait.Until loop
	// starts caching again 1 s later (`cacher.go NewCacherFromConfig`, on a real clock here),
	// which terminates every watcher: the same second passes on the fake clock before that.
	for _, name := range h.order {
		for d := time.Now().Add(10 * time.Second); time.Now().Before(d) && h.resources[name].cacher.Ready(); {
			time.Sleep(time.Millisecond)
		}
	}
	h.advanceTo(h.now() + time.Second)
	// Wait (real time) until each cacher tried to list again, so its watchers were terminated.
	deadline := time.Now().Add(10 * time.Second)
	for _, name := range h.order {
		r := h.resources[name]
		for time.Now().Before(deadline) && r.gated.listCount() == before[name] {
			time.Sleep(time.Millisecond)
		}
	}
	return map[string]any{}
}

func (h *harness) stall() map[string]any {
	if !h.cacheOn {
		return map[string]any{"harness_error": "stall needs the watch cache"}
	}
	for _, name := range h.order {
		h.resources[name].gated.set(false, true)
	}
	return map[string]any{}
}

// heal ends partitions and stalls and waits (real time) until every cacher is ready again.
func (h *harness) heal() map[string]any {
	if !h.cacheOn || h.isDown() {
		return map[string]any{}
	}
	for _, name := range h.order {
		h.resources[name].gated.set(false, false)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, name := range h.order {
		for time.Now().Before(deadline) && !h.resources[name].cacher.Ready() {
			time.Sleep(time.Millisecond)
		}
	}
	return map[string]any{}
}

func (h *harness) restartClient(name string) map[string]any {
	old, ok := h.clients[name]
	if !ok {
		return map[string]any{"harness_error": "unknown client " + name}
	}
	old.cancel()
	select {
	case <-old.done:
	case <-time.After(5 * time.Second):
		return map[string]any{"harness_error": "client did not stop"}
	}
	c, err := h.newClient(old.cfg)
	if err != nil {
		return map[string]any{"harness_error": err.Error()}
	}
	h.clients[name] = c
	go c.run()
	return map[string]any{}
}

// disconnect breaks the client's watch connection (a clean close for the reflector) and keeps
// the client cut off for `for` (its requests are refused meanwhile).
func (h *harness) disconnect(name string, d time.Duration) map[string]any {
	c, ok := h.clients[name]
	if !ok {
		return map[string]any{"harness_error": "unknown client " + name}
	}
	c.mu.Lock()
	c.cutUntil = h.now() + d
	w := c.watch
	c.mu.Unlock()
	if w != nil {
		w.serverClose("disconnect")
	}
	return map[string]any{}
}

func (h *harness) step(s stepIn) map[string]any {
	switch {
	case s.up:
		return h.apiserverUp()
	case s.heal:
		return h.heal()
	}
	switch s.Op {
	case "api.create", "api.update", "api.delete", "etcd.put", "etcd.delete":
		return h.write(s)
	case "fault.compact_now":
		return h.compactNow()
	case "fault.restart_apiserver":
		return h.restartApiserver()
	case "fault.partition_apiserver":
		return h.partition()
	case "fault.stall_apiserver":
		return h.stall()
	case "fault.heal":
		return h.heal()
	case "fault.restart_client":
		return h.restartClient(s.Client)
	case "fault.disconnect_watch":
		return h.disconnect(s.Client, time.Duration(s.ForMs)*time.Millisecond)
	}
	return map[string]any{"harness_error": "unsupported op " + s.Op}
}

// ---------------------------------------------------------------------------------------------

func runCase(in caseIn) (out caseOut) {
	out = caseOut{Name: in.Name, Requests: []*reqRec{}, Waits: []waitRec{}, Clients: map[string]clientEnd{}, Script: []map[string]any{}}
	h := &harness{}
	defer h.teardown()
	if err := h.setup(in); err != nil {
		out.Error = "setup: " + err.Error()
		return out
	}
	// The steps, with the end of each fault's `for` as a step of its own.
	steps := append([]stepIn(nil), in.Steps...)
	for _, s := range in.Steps {
		if s.ForMs <= 0 {
			continue
		}
		switch s.Op {
		case "fault.restart_apiserver":
			steps = append(steps, stepIn{AtMs: s.AtMs + s.ForMs, Op: "(up)", up: true})
		case "fault.partition_apiserver", "fault.stall_apiserver":
			steps = append(steps, stepIn{AtMs: s.AtMs + s.ForMs, Op: "(heal)", heal: true})
		}
	}
	// Client starts are steps too.
	for _, cfg := range in.Clients {
		steps = append(steps, stepIn{AtMs: cfg.StartMs, Op: "(start)", Client: cfg.Name})
	}
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].AtMs < steps[j].AtMs })
	cfgs := map[string]clientIn{}
	for _, cfg := range in.Clients {
		cfgs[cfg.Name] = cfg
	}
	for _, s := range steps {
		h.advanceTo(time.Duration(s.AtMs) * time.Millisecond)
		if s.Op == "(start)" {
			c, err := h.newClient(cfgs[s.Client])
			if err != nil {
				out.Error = err.Error()
				return out
			}
			h.clients[s.Client] = c
			h.clientIDs = append(h.clientIDs, s.Client)
			go c.run()
			continue
		}
		result := h.step(s)
		if _, bad := result["harness_error"]; bad || (!s.up && !s.heal) {
			out.Script = append(out.Script, map[string]any{"at": s.At, "at_ms": s.AtMs, "op": s.Op, "result": result})
		}
	}
	h.advanceTo(time.Duration(in.DurationMs)*time.Millisecond - time.Millisecond)
	h.settle()
	h.mu.Lock()
	out.Requests = append(out.Requests, h.requests...)
	out.Waits = append(out.Waits, h.waits...)
	h.mu.Unlock()
	for _, id := range h.clientIDs {
		c := h.clients[id]
		keys := []string{}
		for _, o := range c.store.List() {
			p := o.(*example.Pod)
			keys = append(keys, p.Name+"@"+p.ResourceVersion)
		}
		sort.Strings(keys)
		out.Clients[id] = clientEnd{LastSyncRV: c.refl.LastSyncResourceVersion(), Store: keys}
	}
	// Copy the records out before teardown stops the watches (their ends are not part of the run).
	h.mu.Lock()
	b, _ := json.Marshal(out)
	h.mu.Unlock()
	var copyOut caseOut
	_ = json.Unmarshal(b, &copyOut)
	return copyOut
}

func main() {
	klog.SetOutput(io.Discard)
	klog.LogToStderr(false)
	klog.SetLogger(logr.Discard())
	var in io.Reader = os.Stdin
	if len(os.Args) > 1 && os.Args[1] != "-" {
		f, err := os.Open(os.Args[1])
		if err != nil {
			fmt.Fprintf(os.Stderr, "reflector oracle: %v\n", err)
			os.Exit(2)
		}
		defer f.Close()
		in = f
	}
	var doc input
	if err := json.NewDecoder(in).Decode(&doc); err != nil {
		fmt.Fprintf(os.Stderr, "reflector oracle: reading input: %v\n", err)
		os.Exit(2)
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	enc := json.NewEncoder(w)
	for _, c := range doc.Cases {
		if err := enc.Encode(runCase(c)); err != nil {
			fmt.Fprintf(os.Stderr, "reflector oracle: %v\n", err)
			os.Exit(1)
		}
		w.Flush()
	}
}
