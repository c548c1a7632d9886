// Package bridge runs the loops that make Sesame locks Home Assistant
// devices: one worker per lock that owns the lock's state and its commands,
// a background poller that spends the month's request budget evenly, and the
// handlers that turn MQTT messages into work without ever blocking.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/budget"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/hass"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/logthrottle"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
)

// Cloud is what the bridge needs of the Sesame Web API.
type Cloud interface {
	Status(ctx context.Context, uuid string) (sesame.Status, error)
	Command(ctx context.Context, uuid string, secret sesame.Secret, cmd sesame.Cmd, tag string) error
}

// Publisher hands messages to MQTT. Publish never blocks (and may drop);
// Deliver waits, bounded, for room in the outbox, and its done (when not
// nil) says once whether the broker took the message.
type Publisher interface {
	Publish(topic string, qos byte, retained bool, payload []byte)
	Deliver(ctx context.Context, topic string, qos byte, retained bool, payload []byte, done func(delivered bool))
}

// Budget is the month's request allowance.
type Budget interface {
	PollInterval() (time.Duration, bool)
	Usage() budget.Usage
	Changed() <-chan struct{}
}

// Lock is one configured lock.
type Lock struct {
	ID     string // stable id used in topics
	UUID   string
	Name   string
	Secret sesame.Secret
}

// Timing holds the durations the bridge waits for. Zero fields take the
// defaults of DefaultTiming.
type Timing struct {
	// Freshness is how long a command may wait, from its arrival to the end
	// of its last attempt to reach the cloud. Older commands are dropped.
	Freshness time.Duration
	// ConfirmAt are the read-backs after a command was accepted, measured
	// from the acceptance.
	ConfirmAt []time.Duration
	// StatusTimeout bounds one status read.
	StatusTimeout time.Duration
	// BudgetRecheck is how often a spent budget is looked at again.
	BudgetRecheck time.Duration
	// RefreshEvery is the least time between two reads from the Refresh
	// button; presses in between are coalesced.
	RefreshEvery time.Duration
	// ResultMaxAge is how old a result that could not be published may be
	// and still be published after the reconnect.
	ResultMaxAge time.Duration
	// PushGrace is how long the push feed may be down (or not yet up)
	// before the bridge polls again.
	PushGrace time.Duration
	// PushSilence is how long after a command's acceptance the push feed
	// must have sent a document for the lock; else it counts as failing.
	PushSilence time.Duration
	// HistoryDelay is the quiet time after an outside change before its
	// history is read (the cloud writes the record after the move), and
	// HistoryMaxDelay bounds the wait during a burst of changes.
	HistoryDelay, HistoryMaxDelay time.Duration
	// SafetyRead is how old a lock's state may get, while push is healthy
	// and nothing arrives for it, before one Web API read.
	SafetyRead time.Duration
}

// DefaultTiming: the cloud needs about 2.5 s to report a move; a lock that
// has not arrived after 15 s is not going to.
var DefaultTiming = Timing{
	Freshness:     10 * time.Second,
	ConfirmAt:     []time.Duration{2500 * time.Millisecond, 5 * time.Second, 9 * time.Second, 15 * time.Second},
	StatusTimeout: 8 * time.Second,
	BudgetRecheck: 10 * time.Minute,
	RefreshEvery:  time.Minute,
	ResultMaxAge:  5 * time.Minute,
	PushGrace:     30 * time.Second,
	PushSilence:   10 * time.Second,
	HistoryDelay:  3 * time.Second,
	// A burst of changes waits at most this long for its history read.
	HistoryMaxDelay: 15 * time.Second,
	SafetyRead:      24 * time.Hour,
}

func (t Timing) withDefaults() Timing {
	if t.Freshness <= 0 {
		t.Freshness = DefaultTiming.Freshness
	}
	if len(t.ConfirmAt) == 0 {
		t.ConfirmAt = DefaultTiming.ConfirmAt
	}
	if t.StatusTimeout <= 0 {
		t.StatusTimeout = DefaultTiming.StatusTimeout
	}
	if t.BudgetRecheck <= 0 {
		t.BudgetRecheck = DefaultTiming.BudgetRecheck
	}
	if t.RefreshEvery <= 0 {
		t.RefreshEvery = DefaultTiming.RefreshEvery
	}
	if t.ResultMaxAge <= 0 {
		t.ResultMaxAge = DefaultTiming.ResultMaxAge
	}
	if t.PushGrace <= 0 {
		t.PushGrace = DefaultTiming.PushGrace
	}
	if t.PushSilence <= 0 {
		t.PushSilence = DefaultTiming.PushSilence
	}
	if t.HistoryDelay <= 0 {
		t.HistoryDelay = DefaultTiming.HistoryDelay
	}
	if t.HistoryMaxDelay <= 0 {
		t.HistoryMaxDelay = DefaultTiming.HistoryMaxDelay
	}
	if t.SafetyRead <= 0 {
		t.SafetyRead = DefaultTiming.SafetyRead
	}
	return t
}

// Options are the bridge's dependencies.
type Options struct {
	Locks     []Lock
	Topics    hass.Topics
	Version   string
	Cloud     Cloud
	Publisher Publisher
	Budget    Budget
	Logger    *slog.Logger
	Timing    Timing
	// StateFile keeps each lock's last status read and state across
	// restarts (JSON, written atomically); "" keeps nothing.
	StateFile string

	// Push: lock states come from the cloud's push feed (PushDocument,
	// PushHealth); background Web API reads stop while it is healthy.
	Push bool
	// Shadow reads a lock's shadow for free when a command is confirmed by
	// push; may be nil.
	Shadow ShadowReader

	// Reader is the card reader's configuration; nil without a reader.
	Reader *Reader
	// Feedback shows outcomes on LEDs; nil without LEDs. FeedbackNames are
	// the patterns Home Assistant may play through the reader device.
	Feedback      Feedback
	FeedbackNames []string
	// SharedAccess is the topic prefix of the access list shared with the
	// other bridges of a building (ACCESS_SHARED); "" keeps the list local.
	// It needs a Reader.
	SharedAccess string
}

// SourceHA is the history tag of commands that come from Home Assistant.
const SourceHA = "Home Assistant"

// Bridge ties the locks to MQTT.
type Bridge struct {
	topics    hass.Topics
	discovery hass.Discovery
	cloud     Cloud
	pub       Publisher
	budget    Budget
	log       *slog.Logger
	warn      *logthrottle.Limiter // for lines any MQTT client can cause
	timing    Timing

	stateFile  string
	stateDirty chan struct{}        // the state file needs a write
	lastSaved  map[string]savedLock // what the state file holds (persist's goroutine, then Run's)
	announceCh chan struct{}        // Home Assistant asked for discovery again
	janitor    *janitor             // clears retained junk

	workers []*worker
	byID    map[string]*worker
	byUUID  map[string]*worker // upper-case UUID

	push    pushState
	shadow  ShadowReader
	history Historian       // nil: the Activity entity names no actor
	known   map[string]bool // lock device ids we publish discovery for

	reader        *Reader
	feedback      Feedback
	feedbackNames []string
	rs            readerState
	access        *Access // the access list's service; nil without a reader

	cloudClock clockFeed // the Cloud's clock offset, when it measures one
}

// New checks the options and builds the bridge; nothing runs until Run.
func New(o Options) (*Bridge, error) {
	var errs []error
	if len(o.Locks) == 0 {
		errs = append(errs, errors.New("no locks"))
	}
	if o.Cloud == nil || o.Publisher == nil || o.Budget == nil {
		errs = append(errs, errors.New("cloud, publisher and budget are required"))
	}
	if o.Topics.Base == "" || o.Topics.Prefix == "" {
		errs = append(errs, errors.New("base topic and discovery prefix are required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Bridge{
		topics:     o.Topics,
		discovery:  hass.Discovery{Topics: o.Topics, Version: o.Version},
		cloud:      o.Cloud,
		pub:        o.Publisher,
		budget:     o.Budget,
		log:        log,
		warn:       logthrottle.New(log, logthrottle.DefaultBurst, logthrottle.DefaultWindow),
		timing:     o.Timing.withDefaults(),
		stateFile:  o.StateFile,
		stateDirty: make(chan struct{}, 1),
		announceCh: make(chan struct{}, 1),
		janitor:    newJanitor(),
		byID:       make(map[string]*worker, len(o.Locks)),
		byUUID:     make(map[string]*worker, len(o.Locks)),
		shadow:     o.Shadow,
		known:      make(map[string]bool, len(o.Locks)),
		reader:     o.Reader,
		feedback:   o.Feedback,
		rs:         readerState{jammed: map[string]bool{}},
	}
	b.push.init(o.Push, time.Now())
	if o.Feedback != nil {
		b.feedbackNames = o.FeedbackNames
	}
	if cs, ok := o.Cloud.(ClockSource); ok {
		b.cloudClock.src = cs
	}
	if h, ok := o.Cloud.(Historian); ok {
		b.history = h
	}
	for _, l := range o.Locks {
		if _, dup := b.byID[l.ID]; dup {
			return nil, fmt.Errorf("bridge: lock %s configured twice", l.UUID)
		}
		w := newWorker(b, l)
		b.workers = append(b.workers, w)
		b.byID[l.ID] = w
		b.byUUID[strings.ToUpper(l.UUID)] = w
		b.known[hass.LockDeviceID(l.ID)] = true
	}
	if r := o.Reader; r != nil {
		if r.Policy == nil {
			return nil, errors.New("bridge: reader without an access policy")
		}
		if b.byID[r.LockID] == nil {
			return nil, fmt.Errorf("bridge: the reader drives lock %q, which is not configured", r.LockID)
		}
		if r.Hash == nil {
			return nil, errors.New("bridge: reader without a UID hash")
		}
		b.access = newAccess(b, r, o.SharedAccess)
	}
	b.loadState()
	return b, nil
}

// OnConnect announces the bridge after each (re)connect: availability,
// discovery, and every state already known (the broker may have lost its
// retained messages), then the results the broker missed while it was
// unreachable. It waits for room in the outbox rather than drop any of it.
func (b *Bridge) OnConnect() {
	b.send(b.topics.Availability(), true, []byte("online"))
	b.announce()
	now := time.Now()
	for _, w := range b.workers {
		w.replayResult(now, b.timing.ResultMaxAge)
	}
	b.rs.mu.Lock()
	first := !b.rs.readyDone
	b.rs.readyDone = true
	b.rs.mu.Unlock()
	if first {
		b.show(PatternReady)
	}
	b.access.connected()
}

// announce publishes discovery documents, known states and the usage.
func (b *Bridge) announce() {
	b.send(b.topics.DeviceConfig(b.discovery.BridgeDeviceID()), true, hass.Marshal(b.discovery.BridgeConfig()))
	for _, w := range b.workers {
		b.send(b.topics.DeviceConfig(hass.LockDeviceID(w.lock.ID)), true,
			hass.Marshal(b.discovery.LockConfig(hass.Lock{ID: w.lock.ID, UUID: w.lock.UUID, Name: w.lock.Name})))
	}
	b.announceReader()
	for _, w := range b.workers {
		w.republish()
	}
	b.publishUsage()
	b.publishClock(true)
	b.publishStateSource()
}

// HandleMessage routes one MQTT message. It never blocks: commands go to the
// lock's worker through a one-slot mailbox.
func (b *Bridge) HandleMessage(m mqtt.Message) {
	switch {
	case m.Topic == b.topics.HAStatus():
		// HA's birth message is not retained; a retained "online" is an old
		// copy that arrives with our own subscribe, right after we announced.
		if string(m.Payload) == "online" && !m.Retained {
			// Not here: announcing waits for room in the outbox, and
			// commands must not wait behind it.
			select {
			case b.announceCh <- struct{}{}:
				b.log.Info("Home Assistant came online; publishing discovery again")
			default:
				b.warn.Info("ha birth coalesced", "Home Assistant came online again; discovery is being published already")
			}
		}
		return
	case strings.HasPrefix(m.Topic, b.topics.Prefix+"/device/"):
		b.clearStale(m)
		return
	case m.Topic == b.topics.ReaderFeedback():
		b.handleFeedback(m)
		return
	case b.access != nil && b.isAccessTopic(m.Topic):
		b.access.handleAccess(m)
		return
	case b.access != nil && b.access.shared != nil && b.access.shared.isTopic(m.Topic):
		b.access.shared.handle(m)
		return
	}
	// Everything below can be caused by any client of the broker: the
	// warnings are rate-limited per kind (b.warn), and topics are cut short.
	id, kind, ok := b.topics.ParseCommandTopic(m.Topic)
	if !ok {
		b.warn.Warn("unexpected topic", "ignoring message on an unexpected topic", "topic", logTopic(m.Topic))
		return
	}
	if m.Retained {
		if len(m.Payload) == 0 {
			return
		}
		// A retained command is an old command: obeying it after a restart
		// would open the door for nobody. Clear it so it stops coming back,
		// also under a lock that is not configured (it is junk there).
		b.warn.Warn("retained command", "ignoring retained command and clearing it from the broker; commands must not be retained",
			"topic", logTopic(m.Topic), "configured", b.byID[id] != nil)
		b.clearRetained(m.Topic)
		return
	}
	if len(m.Payload) == 0 {
		// What clearing a retained command sends to live subscribers (us too).
		b.log.Debug("ignoring empty payload", "topic", logTopic(m.Topic))
		return
	}
	w := b.byID[id]
	if w == nil {
		b.warn.Warn("unknown lock", "ignoring command for a lock that is not configured", "topic", logTopic(m.Topic))
		return
	}
	if m.Duplicate {
		b.warn.Warn("duplicate", "ignoring redelivered command (MQTT DUP flag): it may have been acted on already", "lock", w.lock.Name, "topic", logTopic(m.Topic))
		return
	}
	action, err := hass.ParseCommand(kind, m.Payload)
	if err != nil {
		b.warn.Warn("bad payload", "ignoring command", "lock", w.lock.Name, "topic", logTopic(m.Topic), "err", err)
		return
	}
	if action == hass.ActionRefresh {
		w.refresh(time.Now())
		return
	}
	received := m.Received
	if received.IsZero() {
		received = time.Now()
	}
	w.submit(action, SourceHA, received, nil)
}

// clearStale removes the discovery (and retained topics) of a lock that this
// bridge published once but that is no longer configured.
func (b *Bridge) clearStale(m mqtt.Message) {
	devID, ok := b.topics.DeviceIDFromConfigTopic(m.Topic)
	if !ok || !m.Retained || len(m.Payload) == 0 || b.known[devID] || devID == b.discovery.BridgeDeviceID() {
		return
	}
	if devID == b.discovery.ReaderDeviceID() {
		if !b.hasReaderDevice() && hass.OwnedBy(m.Payload, b.topics.Availability()) {
			b.log.Info("removing the reader device from Home Assistant: no reader or LEDs configured any more", "device", devID)
			b.clearRetained(m.Topic)
			b.clearRetained(b.topics.ReaderStatus())
		}
		return
	}
	lockID, isLock := strings.CutPrefix(devID, "sesame_")
	if !isLock || !hass.OwnedBy(m.Payload, b.topics.Availability()) {
		return
	}
	b.warn.Info("stale lock", "removing a lock that is no longer configured from Home Assistant", "device", devID)
	b.clearRetained(m.Topic)
	b.clearRetained(b.topics.LockState(lockID))
	b.clearRetained(b.topics.LockStatus(lockID))
}

// logTopic cuts a topic from outside to a length fit for a log line.
func logTopic(t string) string {
	const maxLen = 160
	if len(t) <= maxLen {
		return t
	}
	return fmt.Sprintf("%s… (%d bytes)", strings.ToValidUTF8(t[:maxLen], "?"), len(t))
}

// Run runs the workers, the background poller, the usage publisher and the
// state file until ctx is done; then it writes the state file once more,
// with what the workers published last.
func (b *Bridge) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, w := range b.workers {
		g.Go(func() error { w.run(gctx); return nil })
	}
	g.Go(func() error { b.poll(gctx); return nil })
	g.Go(func() error { b.watchUsage(gctx); return nil })
	g.Go(func() error { b.watchClock(gctx); return nil })
	g.Go(func() error { b.warn.Run(gctx); return nil })
	g.Go(func() error { b.announcer(gctx); return nil })
	g.Go(func() error { b.persist(gctx); return nil })
	g.Go(func() error { b.runJanitor(gctx); return nil })
	g.Go(func() error { b.watchPush(gctx); return nil })
	if b.access != nil {
		g.Go(func() error { b.access.run(gctx); return nil })
	}
	err := g.Wait()
	b.saveState()
	return err
}

// announcer publishes discovery again when Home Assistant asks for it.
func (b *Bridge) announcer(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.announceCh:
			b.announce()
		}
	}
}

// poll reads the locks at start that were not read within one round of the
// schedule (all of them without a state file) or whose state is not known to
// be locked or unlocked (a command cut short by the last shutdown, a jam),
// then one lock at a time (the one read longest ago) at the interval the
// budget allows. With push, a lock whose document (the push client's shadow
// read) arrives at start is not read, and while the feed is healthy the
// background reads stop: a lock nothing was heard of for SafetyRead gets one
// read.
func (b *Bridge) poll(ctx context.Context) {
	if b.push.enabled && !b.awaitDocuments(ctx) {
		return
	}
	if d, ok := b.budget.PollInterval(); ok {
		round := d * time.Duration(len(b.workers))
		now := time.Now()
		for _, w := range b.workers {
			last := w.lastRead.Load()
			switch {
			case w.gotDoc.Load():
				w.log.Debug("not reading at start: the push feed sent the lock's state")
			case last == 0 || now.Sub(time.Unix(0, last)) >= round || !w.settled():
				w.requestRead(readBackground)
			default:
				w.log.Debug("not reading at start: read recently (state file)", "read_at", time.Unix(0, last).UTC().Format(time.RFC3339))
			}
		}
	} else {
		b.log.Warn("monthly Web API budget spent: no status reads until next month; commands still work")
	}
	polling := b.push.isPolling()
	// The start-up reads (or the shadow reads) just happened: no safety
	// read before they had time to.
	nextSafety := time.Now().Add(b.timing.BudgetRecheck)
	for {
		var wait time.Duration
		if polling {
			d, ok := b.budget.PollInterval()
			wait = d
			if !ok {
				wait = b.timing.BudgetRecheck
			}
		} else {
			due := time.Unix(0, b.stalest().lastRead.Load()).Add(b.timing.SafetyRead)
			if due.Before(nextSafety) {
				due = nextSafety
			}
			wait = max(time.Until(due), 0)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-b.push.pollCh:
			t.Stop()
			now := b.push.isPolling()
			if now && !polling {
				// Back to polling: a lock not heard of for a round is read now.
				if d, ok := b.budget.PollInterval(); ok {
					w := b.stalest()
					if time.Since(time.Unix(0, w.lastRead.Load())) >= d*time.Duration(len(b.workers)) {
						w.requestRead(readBackground)
					}
				}
			}
			polling = now
			continue
		case <-t.C:
		}
		if _, ok := b.budget.PollInterval(); !ok {
			// Spent: look again later (a safety read that is due
			// would otherwise be due again at once, and the loop spin).
			nextSafety = time.Now().Add(b.timing.BudgetRecheck)
			continue
		}
		if polling {
			b.stalest().requestRead(readBackground)
			continue
		}
		w := b.stalest()
		if time.Since(time.Unix(0, w.lastRead.Load())) >= b.timing.SafetyRead {
			w.requestRead(readSafety)
			nextSafety = time.Now().Add(b.timing.BudgetRecheck)
		}
	}
}

// awaitDocuments waits, at most PushGrace, for every lock's first document
// (the push client reads each shadow when it connects), or until the push
// client reports a failure. It returns false when ctx ended.
func (b *Bridge) awaitDocuments(ctx context.Context) bool {
	t := time.NewTimer(b.timing.PushGrace)
	defer t.Stop()
	for {
		all := true
		for _, w := range b.workers {
			if !w.gotDoc.Load() {
				all = false
				break
			}
		}
		if all || b.push.isPolling() || b.push.failedOnce() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case <-b.push.pollCh:
		}
	}
}

// stalest is the worker whose lock was read longest ago.
func (b *Bridge) stalest() *worker {
	best := b.workers[0]
	for _, w := range b.workers[1:] {
		if w.lastRead.Load() < best.lastRead.Load() {
			best = w
		}
	}
	return best
}

func (b *Bridge) watchUsage(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.budget.Changed():
			b.publishUsage()
		}
	}
}

func (b *Bridge) publishUsage() {
	u := b.budget.Usage()
	p := hass.Usage{Month: u.Month, Used: u.Used, Budget: u.Budget, Reserve: u.Reserve, Remaining: u.Remaining, BackgroundReads: "stopped"}
	if !b.push.isPolling() {
		p.BackgroundReads = "push" // the feed is healthy: background reads stopped, only daily safety reads
	} else if d, ok := b.budget.PollInterval(); ok {
		p.BackgroundReads = "active"
		p.PollIntervalS = int(d.Round(time.Second) / time.Second)
	}
	b.publishJSON(b.topics.Usage(), true, p)
}

func (b *Bridge) publishJSON(topic string, retained bool, v any) {
	payload, err := hass.JSON(v)
	if err != nil {
		b.log.Error("cannot encode payload", "topic", topic, "err", err)
		return
	}
	if retained {
		b.send(topic, true, payload)
		return
	}
	b.pub.Publish(topic, 1, false, payload)
}

// send publishes at QoS 1, waiting (bounded by the MQTT client) for room in
// the outbox: retained state and discovery are never dropped for lack of
// room, however many locks there are.
func (b *Bridge) send(topic string, retained bool, payload []byte) {
	b.pub.Deliver(context.Background(), topic, 1, retained, payload, nil)
}

// Subscriptions are the topic filters a bridge with these topics listens to;
// the MQTT client subscribes to them on every connect.
func Subscriptions(t hass.Topics) []string {
	subs := append(t.CommandFilters(), t.HAStatus(), t.DeviceConfigFilter(), t.ReaderFeedback())
	return append(subs, t.ReaderCommandTopics()...)
}
