// Shared source: this file is also the Kubernetes 1.34 oracle's main.go
// (tests/oracle/kube-1.34/main.go is a symlink to it), built there against k8s.io/apiserver
// v0.34 and the etcd v0.34 pins; ./harness is its own module (watchsim.oracle/kube137/harness,
// see harness/go.mod), which both oracles' go.mod replace with that directory. Keep both
// builds compiling: use API that v0.34 and v0.37 both have (check with `go build .` in
// ../kube-1.34), or hide a difference behind a small helper, as harness.storeOf does for
// etcd3.New's results.

// Command oracle runs watchsim's scripted apiserver steps against the real Kubernetes code:
// k8s.io/apiserver's etcd3 store and Cacher (through CacheDelegator, as kube-apiserver wires
// them) over an embedded etcd (the version k8s.io/apiserver's go.mod pins), with the handler's
// ListOptions defaulting and validation applied as endpoints/handlers/get.go does.
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
// a short quiet period. See README.md beside this file for what stays timing-dependent.
//
// Watch cache off (the case's "watch_cache": "off", from the scenario's
// apiserver.watch_cache.mode): no Cacher is built; creates, updates, deletes, LISTs, WATCHes
// and GETs go to the etcd3 store itself, as kube-apiserver's registry uses it without a watch
// cache, and settling waits for the harness's own etcd watch to see the last write. The store's
// watches (etcd3/watcher.go) read no clock but the handler's deadline, which the harness keeps
// on the fake clock; they ask etcd for no progress notifications, so they send no bookmarks but
// the initial-events-end one.
package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/kubernetes"
	"go.etcd.io/etcd/server/v3/embed"

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
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/features"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/cacher"
	storeerr "k8s.io/apiserver/pkg/storage/errors"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	testingclock "k8s.io/utils/clock/testing"

	shared "watchsim.oracle/kube137/harness"
)

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
// One resource: its etcd3 store and its cacher.

type countingStorage struct {
	storage.Interface
	mu    sync.Mutex
	lists int
	gets  int
}

// Get counts the GETs that reach the etcd3 store (served_from "etcd" of api.get).
func (c *countingStorage) Get(ctx context.Context, key string, opts storage.GetOptions, objPtr runtime.Object) error {
	c.mu.Lock()
	c.gets++
	c.mu.Unlock()
	return c.Interface.Get(ctx, key, opts, objPtr)
}

func (c *countingStorage) getCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gets
}

func (c *countingStorage) GetList(ctx context.Context, key string, opts storage.ListOptions, listObj runtime.Object) error {
	c.mu.Lock()
	c.lists++
	c.mu.Unlock()
	return c.Interface.GetList(ctx, key, opts, listObj)
}

func (c *countingStorage) listCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lists
}

type resource struct {
	name      string
	gr        schema.GroupResource
	prefix    string // the cacher's resource prefix, "/pods"
	store     storage.Interface
	compactor interface{ Stop() }
	counting  *countingStorage
	cacher    *cacher.Cacher
	delegator *cacher.CacheDelegator
	lastWrite uint64
	updates   int
	// continue token of the last LIST of this resource that returned one
	lastContinue string
}

// reg is the registry's storage.Interface for the resource: the CacheDelegator in front of the
// etcd3 store, or (watch cache off: registry/generic/registry/storage_factory.go is not used,
// generic.UndecoratedStorage) the etcd3 store itself, counted.
func (r *resource) reg() storage.Interface {
	if r.delegator == nil {
		return r.counting
	}
	return r.delegator
}

// ---------------------------------------------------------------------------------------------
// Watches opened by steps.

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

// ---------------------------------------------------------------------------------------------
// The harness for one case.

type harness struct {
	clk       *trackingClock
	start     time.Time
	etcd      *embed.Etcd
	client    *kubernetes.Client
	resources map[string]*resource
	order     []string
	watches   map[string]*watchRec
	watchIDs  []string
	activity  chan struct{}
	// cacheOff: the scenario's watch cache is off (no Cacher; see caseIn.WatchCache).
	cacheOff bool
	// etcdRev is the highest revision the harness's own etcd watch of /registry/ has seen
	// (cache off: settle waits for it to reach the last write, since the store's watches
	// are fed by the same etcd watch stream); stopEtcdWatch ends that watch.
	etcdRev       atomic.Int64
	stopEtcdWatch context.CancelFunc
}

// startEtcd: shared.StartEtcd (shared with the reflector oracle).
func startEtcd() (*embed.Etcd, *kubernetes.Client, string, error) { return shared.StartEtcd() }

func (h *harness) newStore(name string) (storage.Interface, interface{ Stop() }, error) {
	// Interval 0: no periodic compaction (the differential scenarios set
	// apiserver.compaction_interval = "0s"); the compactor still watches compact_rev_key.
	return shared.NewStore(h.client, h.clk, name)
}

func (h *harness) startCacher(r *resource) error {
	c, err := shared.NewCacher(r.store, r.name, h.clk)
	if err != nil {
		return err
	}
	r.counting = &countingStorage{Interface: r.store}
	r.cacher = c
	r.delegator = cacher.NewCacheDelegator(c, r.counting)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.Wait(ctx)
}

func (h *harness) objKey(r *resource, ns, name string) string {
	return r.prefix + "/" + ns + "/" + name
}

func (h *harness) setup(c caseIn) error {
	// The fake clock starts at the real time and runs ahead of it, so a watch deadline handed
	// to etcd requests (gRPC reads ctx.Deadline()) is never already past in real time.
	h.clk = &trackingClock{FakeClock: testingclock.NewFakeClock(time.Now())}
	h.start = h.clk.Now()
	h.resources = map[string]*resource{}
	h.watches = map[string]*watchRec{}
	h.activity = make(chan struct{}, 1)
	e, client, _, err := startEtcd()
	if err != nil {
		return err
	}
	h.etcd, h.client = e, client
	for _, ri := range c.Resources {
		s, comp, err := h.newStore(ri.Name)
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
			rv, _ := strconv.ParseUint(out.ResourceVersion, 10, 64)
			r.lastWrite = rv
		}
	}
	// The etcd3 store asks etcd's version in the background (storage/feature
	// DefaultFeatureSupportChecker); until it knows, the cacher serves no consistent read and
	// no streaming list (delegator.ConsistentReadSupported). kube-apiserver has long known
	// when it takes requests.
	if err := shared.WaitForWatchProgressSupport(); err != nil {
		return err
	}
	h.cacheOff = c.WatchCache == "off"
	for _, name := range h.order {
		if h.cacheOff {
			r := h.resources[name]
			r.counting = &countingStorage{Interface: r.store}
			continue
		}
		if err := h.startCacher(h.resources[name]); err != nil {
			return err
		}
	}
	if h.cacheOff {
		return h.watchEtcd()
	}
	return nil
}

// watchEtcd starts the harness's own watch of every key under /registry/ from etcd's current
// revision, recording in h.etcdRev the revision of each event it sees.
func (h *harness) watchEtcd() error {
	resp, err := h.client.Client.Get(context.Background(), "watchsim-probe")
	if err != nil {
		return err
	}
	h.etcdRev.Store(resp.Header.Revision)
	ctx, cancel := context.WithCancel(context.Background())
	h.stopEtcdWatch = cancel
	wch := h.client.Client.Watch(ctx, "/registry/", clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
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
			if !r.cacher.Ready() {
				time.Sleep(time.Millisecond)
				continue
			}
			rv, err := r.cacher.LastSyncResourceVersion()
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

func statusJSON(err error) map[string]any { return shared.StatusJSON(err) }

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

func eventJSON(ev watch.Event) map[string]any { return shared.EventJSON(ev) }

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
	if err := r.reg().Create(context.Background(), h.objKey(r, ns(s), s.Name), obj, out, 0); err != nil {
		return errResult(storeerr.InterpretCreateError(err, r.gr, s.Name))
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
	err = r.reg().GuaranteedUpdate(context.Background(), h.objKey(r, ns(s), s.Name), out, false, nil,
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
		}, nil)
	if err != nil {
		return errResult(storeerr.InterpretUpdateError(err, r.gr, s.Name))
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
	err = r.reg().Delete(context.Background(), h.objKey(r, ns(s), s.Name), out, nil, storage.ValidateAllObjectFunc, nil, storage.DeleteOptions{})
	if err != nil {
		return errResult(storeerr.InterpretDeleteError(err, r.gr, s.Name))
	}
	h.noteWrite(r, rvOf(out))
	return map[string]any{"resource_version": rvOf(out)}
}

// listOptions builds the request's ListOptions and applies the handler's defaulting and
// validation (endpoints/handlers/get.go ListResource).
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
	before := r.counting.listCount()
	list := &example.PodList{}
	done := make(chan error, 1)
	go func() { done <- r.reg().GetList(context.Background(), key, sopts, list) }()
	// A LIST that waits for the cache (consistent read, RV above the cache) is woken by the
	// progress requester's 100 ms timer and times out after 3 s of the cacher's clock.
	lerr := awaitStepping(h, done)
	if lerr != nil {
		return errResult(storeerr.InterpretListError(lerr, r.gr))
	}
	served := "cache"
	if r.counting.listCount() > before {
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
		w, err := r.reg().Watch(ctx, key, sopts)
		done <- res{w, err}
	}()
	got := awaitStepping(h, done)
	if got.err != nil {
		cancel()
		return errResult(storeerr.InterpretWatchError(got.err, r.gr, ""))
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
// CacheDelegator (RV unset: etcd; set, with a ready cache: the cache once it is that fresh, 3 s
// of the cacher's clock, then 504), or the etcd3 store with the watch cache off.
func (h *harness) get(s stepIn) map[string]any {
	r, err := h.resource(s.Resource)
	if err != nil {
		return map[string]any{"harness_error": err.Error()}
	}
	opts := storage.GetOptions{}
	if s.ResourceVersion != nil {
		opts.ResourceVersion = *s.ResourceVersion
	}
	before := r.counting.getCount()
	out := &example.Pod{}
	done := make(chan error, 1)
	go func() { done <- r.reg().Get(context.Background(), h.objKey(r, ns(s), s.Name), opts, out) }()
	if err := awaitStepping(h, done); err != nil {
		return errResult(storeerr.InterpretGetError(err, r.gr, s.Name))
	}
	served := "cache"
	if r.counting.getCount() > before {
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
		return r.prefix + "/" + namespace + "/" + name, false
	}
	if namespace != "" {
		return r.prefix + "/" + namespace, true
	}
	return r.prefix, true
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
	resp, err := h.client.Client.Get(context.Background(), "compact-probe")
	if err != nil {
		return map[string]any{"harness_error": err.Error()}
	}
	if _, err := h.client.Client.Compact(context.Background(), resp.Header.Revision); err != nil {
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
		r := h.resources[name]
		r.delegator.Stop()
	}
	for _, id := range h.watchIDs {
		h.watches[id].waitClosed()
	}
	for _, name := range h.order {
		r := h.resources[name]
		r.lastContinue = ""
		if err := h.startCacher(r); err != nil {
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

func runCase(c caseIn) (out caseOut) {
	out = caseOut{Name: c.Name, Script: []map[string]any{}, Watches: map[string][]map[string]any{}}
	h := &harness{}
	defer h.teardown()
	if err := h.setup(c); err != nil {
		out.Error = "setup: " + err.Error()
		return out
	}
	steps := append([]stepIn(nil), c.Steps...)
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].AtMs < steps[j].AtMs })
	for _, s := range steps {
		h.advanceTo(time.Duration(s.AtMs) * time.Millisecond)
		h.settle()
		result := h.step(s)
		if e, ok := result["scenario_error"]; ok {
			out.Error = fmt.Sprintf("step at %s (%s): %v", s.At, s.Op, e)
			return out
		}
		h.settle()
		out.Script = append(out.Script, map[string]any{"at": s.At, "op": s.Op, "result": result})
	}
	// watchsim's run ends at `duration`: what is due exactly then (a watch deadline) happens
	// after the end, so the oracle stops just before it.
	h.advanceTo(time.Duration(c.DurationMs)*time.Millisecond - time.Millisecond)
	h.settle()
	for _, id := range h.watchIDs {
		w := h.watches[id]
		w.mu.Lock()
		out.Watches[id] = append([]map[string]any{}, w.events...)
		w.mu.Unlock()
	}
	return out
}

func main() {
	klog.SetOutput(io.Discard)
	klog.LogToStderr(false)
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
		if err := enc.Encode(runCase(c)); err != nil {
			fmt.Fprintf(os.Stderr, "oracle: %v\n", err)
			os.Exit(1)
		}
		w.Flush()
	}
}
