package bridge

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/hass"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
)

// Document is one lock status from the cloud's push feed (cmd converts the
// push client's documents to it).
type Document struct {
	UUID     string        // the lock's UUID, any case
	Status   sesame.Status // state, battery, voltage, position, hub
	Critical bool          // battery critical
	Source   string        // hass.SourcePush or hass.SourceShadowRead
	Received time.Time
}

// PushHealth is the push feed's connection state.
type PushHealth struct {
	Connected bool
	Reason    string // why not connected
}

// ShadowReader reads a lock's shadow once: free, no Web API request.
type ShadowReader interface {
	ReadShadow(ctx context.Context, uuid string) (Document, error)
}

// Historian reads a lock's history (one Web API request, counted). A Cloud
// that implements it (sesame.Client does) is used for the Activity entity.
type Historian interface {
	History(ctx context.Context, uuid string, n int) ([]sesame.HistoryEntry, error)
}

// maxQueuedDocs bounds the documents waiting for a busy worker; the oldest
// are dropped first.
const maxQueuedDocs = 8

// historyRecords is how many history records one read asks for.
const historyRecords = 5

// pushState is what the bridge knows of the push feed. The zero value is a
// bridge without push: it polls.
type pushState struct {
	enabled bool
	wake    chan struct{} // the watcher: health changed
	pollCh  chan struct{} // the poller: the mode changed, or a lock's first document arrived

	mu        sync.Mutex
	connected bool
	reason    string    // why the feed is not healthy
	downSince time.Time // when it stopped being healthy (or the start)
	silent    bool      // a command's document never came
	failed    bool      // the push client reported a failure since the start
	reports   int       // health reports so far
	polling   bool      // the bridge polls (the feed failed for longer than the grace)
	shown     hass.StateSource
}

func (p *pushState) init(enabled bool, now time.Time) {
	p.enabled, p.wake, p.pollCh = enabled, make(chan struct{}, 1), make(chan struct{}, 1)
	p.downSince = now
	p.reason = "connecting to the push feed"
	p.polling = !enabled
	p.shown = hass.StateSource{Source: hass.StateSourceFailing, Reason: p.reason, Since: now.UTC().Format(time.RFC3339)}
	if !enabled {
		p.shown = hass.StateSource{Source: hass.StateSourcePolling, Reason: "push is off (SESAME_PUSH=off)", Since: now.UTC().Format(time.RFC3339)}
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// healthy reports a connected feed that has not been caught silent.
func (p *pushState) healthy() bool {
	if !p.enabled {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.connected && !p.silent
}

// isPolling reports whether background Web API reads run.
func (p *pushState) isPolling() bool {
	if !p.enabled {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.polling
}

// PushHealth takes the push client's connection state. It never blocks.
func (b *Bridge) PushHealth(h PushHealth) {
	p := &b.push
	if !p.enabled {
		return
	}
	failed := false
	p.mu.Lock()
	was := p.connected && !p.silent
	p.connected = h.Connected
	if h.Connected {
		p.silent = false // a new connection gets a new chance
	} else {
		p.reason = h.Reason
		if p.reason == "" {
			p.reason = "the push feed is not connected"
		}
		if was {
			p.downSince = time.Now()
		}
		// The first report of a client that has not connected yet says
		// "connecting"; any later one is a failure.
		failed = p.reports > 0
		p.failed = p.failed || failed
	}
	p.reports++
	p.mu.Unlock()
	signal(p.wake)
	if failed {
		signal(p.pollCh) // the start-up reads need not wait for a feed that failed
	}
}

// failedOnce reports whether the push client reported a failure.
func (p *pushState) failedOnce() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed
}

// pushSilent marks the feed unhealthy: a command was accepted and no
// document followed.
func (b *Bridge) pushSilent(w *worker, after time.Duration) {
	p := &b.push
	p.mu.Lock()
	was := p.connected && !p.silent
	p.silent = true
	p.reason = fmt.Sprintf("no document from the push feed within %s of a command to %s", after, w.lock.Name)
	if was {
		p.downSince = time.Now()
	}
	p.mu.Unlock()
	w.log.Warn("the push feed stayed silent after a command; confirming with Web API reads", "waited", after)
	signal(p.wake)
}

// PushDocument takes one document of the push feed (or a shadow read) and
// hands it to the lock's worker. It never blocks.
func (b *Bridge) PushDocument(d Document) {
	w := b.byUUID[strings.ToUpper(d.UUID)]
	if w == nil {
		b.warn.Info("push unknown lock", "ignoring a push document for a lock that is not configured", "uuid", logTopic(d.UUID))
		return
	}
	if d.Received.IsZero() {
		d.Received = time.Now()
	}
	if d.Source == "" {
		d.Source = hass.SourcePush
	}
	if d.Source == hass.SourcePush && b.push.enabled {
		p := &b.push
		p.mu.Lock()
		revived := p.silent && p.connected
		p.silent = false
		p.mu.Unlock()
		if revived {
			signal(p.wake)
		}
	}
	w.lastRead.Store(d.Received.UnixNano())
	w.enqueueDoc(d)
	if !w.gotDoc.Swap(true) {
		signal(b.push.pollCh)
	}
}

// watchPush publishes the State source and switches between push and
// polling: the feed unhealthy for longer than PushGrace means polling.
func (b *Bridge) watchPush(ctx context.Context) {
	p := &b.push
	if !p.enabled {
		return
	}
	grace := b.timing.PushGrace
	for {
		now := time.Now()
		p.mu.Lock()
		healthy := p.connected && !p.silent
		var next hass.StateSource
		var wait time.Duration
		switch {
		case healthy:
			next = hass.StateSource{Source: hass.StateSourcePush}
		case now.Sub(p.downSince) >= grace:
			next = hass.StateSource{Source: hass.StateSourceFailing, Reason: p.reason}
		default:
			next = p.shown // within the grace: nothing changes yet
			wait = grace - now.Sub(p.downSince)
		}
		changed := next.Source != p.shown.Source || next.Reason != p.shown.Reason
		if changed {
			next.Since = now.UTC().Format(time.RFC3339)
			p.shown = next
		}
		wasPolling := p.polling
		if wait == 0 { // healthy, or failing beyond the grace
			p.polling = !healthy
		}
		nowPolling := p.polling
		p.mu.Unlock()
		if changed {
			switch {
			case next.Source == hass.StateSourcePush:
				b.log.Info("push feed working: lock states come from it; background Web API reads stopped (one safety read per lock a day at most)")
			default:
				b.log.Warn("push feed failing: back to budgeted Web API polling until it works again", "reason", next.Reason)
			}
			b.publishStateSource()
		}
		if wasPolling != nowPolling {
			signal(p.pollCh)
			b.publishUsage()
		}
		var timer *time.Timer
		var fire <-chan time.Time
		if wait > 0 {
			timer = time.NewTimer(wait)
			fire = timer.C
		}
		select {
		case <-ctx.Done():
		case <-p.wake:
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// publishStateSource publishes what the State source sensor shows.
func (b *Bridge) publishStateSource() {
	b.push.mu.Lock()
	s := b.push.shown
	b.push.mu.Unlock()
	b.publishJSON(b.topics.StateSource(), true, s)
}

// enqueueDoc queues a document for the worker, dropping the oldest when
// the queue is full.
func (w *worker) enqueueDoc(d Document) {
	w.docMu.Lock()
	if len(w.docs) >= maxQueuedDocs {
		w.docs = append(w.docs[:0], w.docs[1:]...)
		w.docDropped++
	}
	w.docs = append(w.docs, d)
	w.docMu.Unlock()
	select {
	case w.docNote <- struct{}{}:
	default:
	}
}

func (w *worker) takeDocs() []Document {
	w.docMu.Lock()
	defer w.docMu.Unlock()
	d := w.docs
	w.docs = nil
	if w.docDropped > 0 {
		w.log.Debug("push documents dropped while the worker was busy", "dropped", w.docDropped)
		w.docDropped = 0
	}
	return d
}

// applyDoc remembers and publishes a document's status; the caller decides
// what the lock entity shows. Runs on the worker goroutine.
func (w *worker) applyDoc(d Document) {
	st := d.Status
	w.confirmed, w.isConfirmed = st, true
	w.lastRead.Store(d.Received.UnixNano())
	// RawState is the mechst bytes here: sesame_status says the state.
	sv := hass.NewStatus(st.Battery, st.Voltage, st.Position, st.HubOnline, string(st.State), st.Timestamp, d.Received, d.Source)
	payload, err := hass.JSON(sv)
	if err != nil {
		w.log.Error("cannot encode status", "err", err)
		return
	}
	if d.Critical && !w.criticalLogged {
		w.criticalLogged = true
		w.log.Warn("the lock reports its battery critical", "voltage", st.Voltage)
	}
	w.pubMu.Lock()
	same := bytes.Equal(payload, w.status) // the same document on both shadow topics
	w.status, w.statusV, w.hasStatus = payload, sv, true
	if !same {
		w.b.send(w.b.topics.LockStatus(w.lock.ID), true, payload)
	}
	w.pubMu.Unlock()
	if !same {
		w.b.stateChanged()
	}
}

// onDocs handles documents while no command runs: the state follows them,
// and a change nobody here commanded gets a history read (debounced).
func (w *worker) onDocs(docs []Document) {
	for _, d := range docs {
		w.applyDoc(d)
		s := stateOf(d.Status)
		w.pubMu.Lock()
		same := w.state == s
		w.pubMu.Unlock()
		if !same {
			w.publishState(s)
		}
		w.settle(s, time.Now())
	}
}

// settle notes a settled state: a change from the last one that this bridge
// did not command is somebody else's, and its history is read.
func (w *worker) settle(s hass.LockState, now time.Time) {
	if s != hass.Locked && s != hass.Unlocked {
		return
	}
	prev := w.lastSettled
	w.lastSettled = s
	if prev == "" || prev == s {
		return
	}
	w.scheduleHistory(s, now)
}

// scheduleHistory debounces the history read after an outside change: a
// burst of changes costs one read, HistoryDelay after the last one (at most
// HistoryMaxDelay after the first).
func (w *worker) scheduleHistory(s hass.LockState, now time.Time) {
	tm := w.b.timing
	w.histState = s
	if w.histTimer == nil {
		w.histFirst = now
		w.histTimer = time.NewTimer(tm.HistoryDelay)
		return
	}
	if now.Sub(w.histFirst) < tm.HistoryMaxDelay {
		w.histTimer.Reset(tm.HistoryDelay)
	}
}

func (w *worker) histC() <-chan time.Time {
	if w.histTimer == nil {
		return nil
	}
	return w.histTimer.C
}

// readHistory reads who moved the lock and publishes it on the Activity
// entity. Without a history reader, or with the month's allowance for
// reads spent, the event says only what happened.
func (w *worker) readHistory(ctx context.Context) {
	w.histTimer = nil
	state := w.histState
	now := time.Now()
	generic := hass.Activity{EventType: hass.ActivityUnlocked, By: "unknown", Method: "unknown", At: now.UTC().Format(time.RFC3339)}
	if state == hass.Locked {
		generic.EventType = hass.ActivityLocked
	}
	h := w.b.history
	if h == nil {
		w.publishActivity(generic)
		return
	}
	if _, ok := w.b.budget.PollInterval(); !ok {
		w.log.Info("history read skipped: this month's allowance for reads is spent; the Activity event names no actor", "state", state)
		w.publishActivity(generic)
		return
	}
	rctx, cancel := context.WithTimeout(ctx, w.b.timing.StatusTimeout)
	defer cancel()
	recs, err := h.History(rctx, w.lock.UUID, historyRecords)
	w.b.cloudAnswered(err)
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("history read failed; the Activity event names no actor", "err", err)
			w.publishActivity(generic)
		}
		return
	}
	for _, r := range recs { // newest first
		if r.RecordID != 0 && r.RecordID <= w.lastRecord {
			break
		}
		ev, method := hass.ActivityOf(r.Type)
		if ev == hass.ActivityOther && r.Type != sesame.HistoryManualElse {
			continue // settings, clock, failed drives: not the change seen
		}
		for _, o := range recs { // r is one of them
			w.lastRecord = max(w.lastRecord, o.RecordID)
		}
		typ := r.Type
		a := hass.Activity{EventType: ev, By: r.Tag, Method: method, HistoryType: &typ, At: now.UTC().Format(time.RFC3339)}
		if !r.At.IsZero() {
			a.At = r.At.UTC().Format(time.RFC3339)
		}
		if a.By == "" {
			a.By = "unknown"
		}
		w.log.Info("lock moved by somebody else", "event", a.EventType, "by", a.By, "method", a.Method, "history_type", typ)
		w.publishActivity(a)
		return
	}
	w.log.Info("history has no new record of the change; the Activity event names no actor", "state", state)
	w.publishActivity(generic)
}

// ownActivity publishes a command of this bridge that moved the lock.
func (w *worker) ownActivity(action hass.Action, source string) {
	ev := hass.ActivityWebUnlocked
	if action == hass.ActionLock {
		ev = hass.ActivityWebLocked
	}
	w.publishActivity(hass.Activity{EventType: ev, By: source, Method: "sesame2mqtt", At: time.Now().UTC().Format(time.RFC3339)})
}

func (w *worker) publishActivity(a hass.Activity) {
	w.b.publishJSON(w.b.topics.LockActivity(w.lock.ID), false, a)
}
