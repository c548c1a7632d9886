package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/hass"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
)

// dupReadWindow: a background read asked for this soon after a successful
// read is the same read asked for twice.
const dupReadWindow = 5 * time.Second

// readKind says why a status read is wanted.
type readKind int

const (
	readBackground readKind = iota + 1
	readRefresh
	readUnknown // a command's outcome is unknown: find out what the lock did
	readSafety  // the push feed is healthy: the daily safety read
)

func (k readKind) String() string {
	switch k {
	case readRefresh:
		return "refresh"
	case readUnknown:
		return "after a command with an unknown outcome"
	case readSafety:
		return "daily safety read while push is healthy"
	}
	return "background"
}

// errSuperseded cancels a command when a different one arrives for the lock.
var errSuperseded = errors.New("superseded by a newer command")

// hooks let the submitter of a command follow it (a card tap shows it on
// the reader). They run on the worker's goroutine, or the submitter's, and
// must not block.
type hooks struct {
	// sending: the command, resolved to lock or unlock, is about to be sent.
	sending func(action hass.Action)
	// done: the command ended; called exactly once per submitted command.
	done func(action hass.Action, outcome, detail string)
}

// job is one command from its arrival to its result.
type job struct {
	action   hass.Action
	source   string
	received time.Time
	ctx      context.Context // set when the job becomes current
	cancel   context.CancelCauseFunc

	// Guarded by the worker's mu.
	hooks []hooks
	sent  hass.Action // the resolved action once sending; 0 before
}

// worker owns one lock: its commands (one at a time, the newest wins), its
// status reads and what is published about it.
type worker struct {
	b    *Bridge
	lock Lock
	log  *slog.Logger

	wake  chan struct{} // a job is pending
	reads chan readKind // a status read is wanted

	lastRead atomic.Int64 // unix nanos of the last successful read (or the restored one)
	// liveReadAt is when this process last read the lock (worker goroutine only).
	liveReadAt time.Time

	mu        sync.Mutex
	pending   *job               // newest command not yet started: a one-slot mailbox
	current   *job               // command being carried out
	reading   context.CancelFunc // cancels a background read in progress
	refreshAt time.Time          // when the Refresh button last led to a read (or a refusal)
	// Results: each gets a sequence number; the newest one that did not
	// reach the broker waits for the next connect.
	resultSeq    uint64
	deliveredSeq uint64
	undelivered  *pendingResult

	// pubMu orders what is published about the lock (state, status) against
	// republish on reconnect. Publishing may wait for room in the outbox, so
	// it is not mu: submit never waits behind it.
	pubMu     sync.Mutex
	state     hass.LockState
	status    []byte      // last status payload published
	statusV   hass.Status // the same, decoded, for the state file
	hasStatus bool

	// Push documents waiting for the worker (bounded, oldest dropped).
	docMu      sync.Mutex
	docs       []Document
	docDropped int
	docNote    chan struct{}
	gotDoc     atomic.Bool // a document arrived since the start

	// Owned by the worker goroutine.
	confirmed      sesame.Status
	isConfirmed    bool
	criticalLogged bool
	lastSettled    hass.LockState // the last locked/unlocked seen
	histTimer      *time.Timer    // a history read is due (debounced)
	histFirst      time.Time
	histState      hass.LockState
	lastRecord     int64 // the newest history record already published
}

// pendingResult is a result message the broker did not acknowledge.
type pendingResult struct {
	seq uint64
	r   hass.Result
	at  time.Time // when the command ended
}

func newWorker(b *Bridge, l Lock) *worker {
	return &worker{
		b:       b,
		lock:    l,
		log:     b.log.With("lock", l.Name, "uuid", l.UUID),
		wake:    make(chan struct{}, 1),
		reads:   make(chan readKind, 1),
		docNote: make(chan struct{}, 1),
	}
}

// submit hands a command to the worker. A command equal to the one running
// or waiting is coalesced; a different one replaces what is waiting and
// cancels what is running (it will not be reported as done).
func (w *worker) submit(action hass.Action, source string, now time.Time, h *hooks) {
	w.mu.Lock()
	for _, j := range []*job{w.current, w.pending} {
		if j == nil || j.action != action {
			continue
		}
		sent := j.sent
		if h != nil {
			j.hooks = append(j.hooks, *h)
		}
		w.mu.Unlock()
		w.log.Info("coalescing command: the same command is already in flight", "command", action.String(), "source", source)
		if h != nil && h.sending != nil && sent != 0 {
			h.sending(sent)
		}
		return
	}
	replaced := w.pending
	w.pending = &job{action: action, source: source, received: now}
	if h != nil {
		w.pending.hooks = []hooks{*h}
	}
	if w.current != nil {
		w.current.cancel(errSuperseded)
	}
	if w.reading != nil {
		// A command never waits behind a background read.
		w.reading()
	}
	w.mu.Unlock()
	if replaced != nil {
		w.log.Info("command replaced before it started", "command", replaced.action.String(), "by", action.String())
		w.result(replaced, replaced.action, hass.ResultFailed, "superseded by "+action.String()+" before it was sent")
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// requestRead asks for one status read; a read already waiting absorbs it.
func (w *worker) requestRead(k readKind) {
	select {
	case w.reads <- k:
	default:
		w.log.Debug("status read already queued", "reason", k.String())
	}
}

func (w *worker) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			w.abandonPending()
			return
		case <-w.wake:
			for j := w.take(ctx); j != nil; j = w.take(ctx) {
				w.execute(j)
				w.finish(j)
			}
		case k := <-w.reads:
			w.read(ctx, k)
		case <-w.docNote:
			w.onDocs(w.takeDocs())
		case <-w.histC():
			w.readHistory(ctx)
		}
	}
}

// abandonPending ends a command still waiting when the worker stops: it was
// never sent, and its result says so ("a result message ends every command").
func (w *worker) abandonPending() {
	w.mu.Lock()
	j := w.pending
	w.pending = nil
	w.mu.Unlock()
	if j != nil {
		w.log.Warn("command interrupted by shutdown before it was sent", "command", j.action.String())
		w.result(j, j.action, hass.ResultFailed, "interrupted before it was sent: the bridge is shutting down")
	}
}

// take moves the pending job to current, giving it its context under the
// same lock, so that submit can always cancel what is current.
func (w *worker) take(ctx context.Context) *job {
	w.mu.Lock()
	defer w.mu.Unlock()
	j := w.pending
	if j == nil {
		return nil
	}
	j.ctx, j.cancel = context.WithCancelCause(ctx)
	w.pending, w.current = nil, j
	return j
}

func (w *worker) finish(j *job) {
	w.mu.Lock()
	if w.current == j {
		w.current = nil
	}
	w.mu.Unlock()
	j.cancel(nil)
}

// execute carries out one command: resolve, announce, send, confirm.
func (w *worker) execute(j *job) {
	ctx := j.ctx
	tm := w.b.timing

	if age := time.Since(j.received); age > tm.Freshness {
		w.log.Warn("dropping stale command", "command", j.action.String(), "waited", age.Round(time.Millisecond))
		w.result(j, j.action, hass.ResultFailed, fmt.Sprintf("dropped: waited %s before it could be sent", age.Round(time.Millisecond)))
		return
	}
	deadline, stop := context.WithDeadline(ctx, j.received.Add(tm.Freshness))
	defer stop()

	action, err := w.resolve(deadline, j.action)
	if err != nil {
		w.fail(ctx, j, j.action, err)
		return
	}
	target, moving, cmd := hass.Locked, hass.Locking, sesame.CmdLock
	if action == hass.ActionUnlock {
		target, moving, cmd = hass.Unlocked, hass.Unlocking, sesame.CmdUnlock
	}
	w.mu.Lock()
	j.sent = action
	hs := append([]hooks(nil), j.hooks...)
	w.mu.Unlock()
	for _, h := range hs {
		if h.sending != nil {
			h.sending(action)
		}
	}
	w.publishMoving(moving)
	if err := w.b.cloud.Command(deadline, w.lock.UUID, w.lock.Secret, cmd, j.source); err != nil {
		w.b.cloudAnswered(err)
		if ctx.Err() != nil && !refused(err) {
			// Cut short while it was being sent: it may have reached the cloud.
			w.interrupted(ctx, j, action, phaseSending, err)
			return
		}
		if unanswered(err) {
			w.unknownOutcome(j, action, err)
			return
		}
		w.fail(ctx, j, action, err)
		return
	}
	w.b.cloudAnswered(nil)
	accepted := time.Now()
	w.log.Info("command accepted by the cloud; confirming", "command", action.String(), "source", j.source)
	w.confirm(ctx, j, action, target, accepted)
}

// resolve turns toggle into lock or unlock from the confirmed state, reading
// the lock first when the bridge does not know it. Toggle (88) itself is
// never sent: a duplicated toggle would undo itself.
func (w *worker) resolve(ctx context.Context, a hass.Action) (hass.Action, error) {
	if a != hass.ActionToggle {
		return a, nil
	}
	if !w.isConfirmed || (w.confirmed.State != sesame.StateLocked && w.confirmed.State != sesame.StateUnlocked) {
		if _, err := w.readStatus(ctx); err != nil {
			return a, fmt.Errorf("toggle needs the current state: %w", err)
		}
	}
	switch w.confirmed.State {
	case sesame.StateLocked:
		return hass.ActionUnlock, nil
	case sesame.StateUnlocked:
		return hass.ActionLock, nil
	case sesame.StateMoved:
		// Stopped between the end positions: locking is the safe direction.
		return hass.ActionLock, nil
	}
	return a, fmt.Errorf("toggle needs the current state: the lock reports %q", w.confirmed.RawState)
}

// confirm waits until the lock reports the target state: from the push
// feed while it is healthy, else by reading it back.
func (w *worker) confirm(ctx context.Context, j *job, action hass.Action, target hass.LockState, accepted time.Time) {
	if w.b.push.healthy() {
		w.confirmPush(ctx, j, action, target, accepted)
		return
	}
	w.confirmReads(ctx, j, action, target, accepted, w.b.timing.ConfirmAt, "")
}

// success ends a command whose lock reached the target.
func (w *worker) success(j *job, action hass.Action, target hass.LockState, detail string) {
	w.publishState(target)
	w.settleOwn(target)
	w.result(j, action, hass.ResultSuccess, detail)
	w.ownActivity(action, j.source)
}

// settleOwn notes a state this bridge's command reached: not a change of
// somebody else's.
func (w *worker) settleOwn(s hass.LockState) { w.lastSettled = s }

// jammed ends a command whose lock did not arrive.
func (w *worker) jammed(j *job, action hass.Action, target hass.LockState, last string) {
	wait := w.b.timing.ConfirmAt[len(w.b.timing.ConfirmAt)-1]
	detail := fmt.Sprintf("not %s after %s: %s", target, wait, last)
	w.log.Warn("lock did not reach the target state; reporting jammed", "command", action.String(), "why", detail)
	w.publishState(hass.Jammed)
	w.result(j, action, hass.ResultJammed, detail)
}

// confirmPush confirms a command by the documents that follow it, and by
// free shadow reads at the confirmation times. A feed that sends no
// document within PushSilence is caught silent: the rest is confirmed by
// Web API reads, and the bridge polls until the feed works again.
func (w *worker) confirmPush(ctx context.Context, j *job, action hass.Action, target hass.LockState, accepted time.Time) {
	tm := w.b.timing
	end := accepted.Add(tm.ConfirmAt[len(tm.ConfirmAt)-1])
	silenceAt := accepted.Add(tm.PushSilence)
	points := tm.ConfirmAt
	if w.b.shadow == nil {
		points = nil
	}
	gotPush := false
	last := "the push feed reported nothing"
	check := func(d Document) bool {
		w.applyDoc(d)
		if d.Source == hass.SourcePush {
			gotPush = true
		}
		if stateOf(d.Status) == target {
			after := d.Received.Sub(accepted).Round(100 * time.Millisecond)
			detail := fmt.Sprintf("%s (confirmed by %s after %s)", d.Status.State, strings.ReplaceAll(d.Source, "_", " "), after)
			w.log.Info("command confirmed", "command", action.String(), "by", d.Source, "after", after)
			w.success(j, action, target, detail)
			return true
		}
		last = fmt.Sprintf("the lock reports %s", d.Status.State)
		if d.Status.HubOnline != nil && !*d.Status.HubOnline {
			last = fmt.Sprintf("the hub is offline; the lock reports %s", d.Status.State)
		}
		return false
	}
	for {
		now := time.Now()
		next := end
		if !gotPush && silenceAt.Before(next) {
			next = silenceAt
		}
		for len(points) > 0 && !accepted.Add(points[0]).After(now) && accepted.Add(points[0]).Before(end) {
			// A shadow read is due.
			points = points[1:]
			rctx, cancel := context.WithTimeout(ctx, tm.StatusTimeout)
			d, err := w.b.shadow.ReadShadow(rctx, w.lock.UUID)
			cancel()
			if ctx.Err() != nil {
				w.interrupted(ctx, j, action, phaseAccepted, nil)
				return
			}
			if err != nil {
				w.log.Debug("shadow read failed", "err", err)
				continue
			}
			if d.Received.IsZero() {
				d.Received = time.Now()
			}
			d.Source = hass.SourceShadowRead
			if check(d) {
				return
			}
		}
		if len(points) > 0 && accepted.Add(points[0]).Before(next) {
			next = accepted.Add(points[0])
		}
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			w.interrupted(ctx, j, action, phaseAccepted, nil)
			return
		case <-w.docNote:
			t.Stop()
			docs := w.takeDocs()
			for i, d := range docs {
				if check(d) {
					// What followed the confirming document (a quick
					// auto-lock) is the lock's state now.
					w.onDocs(docs[i+1:])
					return
				}
			}
			continue
		case <-t.C:
		}
		now = time.Now()
		if !now.Before(end) {
			w.jammed(j, action, target, last)
			return
		}
		if !gotPush && !now.Before(silenceAt) {
			w.b.pushSilent(w, tm.PushSilence)
			var rest []time.Duration
			for _, at := range tm.ConfirmAt {
				if accepted.Add(at).After(now) {
					rest = append(rest, at)
				}
			}
			w.confirmReads(ctx, j, action, target, accepted, rest, last)
			return
		}
	}
}

// confirmReads reads the lock back at the given times after the acceptance
// until it reports the target state.
func (w *worker) confirmReads(ctx context.Context, j *job, action hass.Action, target hass.LockState, accepted time.Time, points []time.Duration, last string) {
	for _, at := range points {
		t := time.NewTimer(time.Until(accepted.Add(at)))
		select {
		case <-ctx.Done():
			t.Stop()
			w.interrupted(ctx, j, action, phaseAccepted, nil)
			return
		case <-t.C:
		}
		st, err := w.readStatus(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			w.interrupted(ctx, j, action, phaseAccepted, nil)
			return
		case err != nil:
			last = "status read failed: " + err.Error()
			w.log.Warn("confirmation read failed", "err", err)
			continue
		case stateOf(st) == target:
			detail := fmt.Sprintf("%s (confirmed after %s)", st.State, at)
			w.log.Info("command confirmed", "command", action.String(), "after", at)
			w.success(j, action, target, detail)
			return
		case st.HubOnline != nil && !*st.HubOnline:
			last = fmt.Sprintf("the hub is offline; the lock reports %s", st.State) + w.b.clockHint(st, time.Now())
		default:
			last = fmt.Sprintf("the lock reports %s", st.State) + w.b.clockHint(st, time.Now())
		}
	}
	w.jammed(j, action, target, last)
}

// phase is how far a command got when it was interrupted.
type phase int

const (
	phaseBefore   phase = iota // nothing was sent
	phaseSending               // the POST was under way: the cloud may have accepted it
	phaseAccepted              // the cloud accepted it; the lock was not read back yet
)

// refused reports an answer of the cloud that says the command was not
// taken (403, another 4xx): retrying would not help and nothing moved.
func refused(err error) bool {
	_, answered := errors.AsType[*sesame.APIError](err)
	return answered && !sesame.IsTransient(err)
}

// interrupted ends a command whose context was cancelled: by a newer command
// (which publishes its own state) or by shutdown. A shutdown after the
// command may have reached the cloud leaves the outcome unknown, and that is
// what is published: state unknown (None), result "unknown" with the reason.
func (w *worker) interrupted(ctx context.Context, j *job, action hass.Action, ph phase, err error) {
	if errors.Is(context.Cause(ctx), errSuperseded) {
		w.log.Info("command superseded while in flight", "command", action.String())
		w.result(j, action, hass.ResultFailed, "superseded by a newer command")
		return
	}
	switch ph {
	case phaseBefore:
		w.log.Warn("command interrupted by shutdown before it was sent", "command", action.String())
		w.result(j, action, hass.ResultFailed, "interrupted before it was sent: the bridge is shutting down")
	case phaseSending:
		w.log.Warn("command interrupted by shutdown while it was being sent; its outcome is unknown", "command", action.String(), "err", err)
		w.publishState(hass.Reset)
		w.result(j, action, hass.ResultUnknown, "interrupted while it was being sent (the bridge is shutting down): the cloud may have accepted it; the lock was not read back")
	default:
		w.log.Warn("command interrupted by shutdown after the cloud accepted it; its outcome is unknown", "command", action.String())
		w.publishState(hass.Reset)
		w.result(j, action, hass.ResultUnknown, "interrupted after the cloud accepted it (the bridge is shutting down): the lock was not read back")
	}
}

// unanswered reports a command error after which the cloud may still have
// carried the command out: no attempt got an answer (timeouts, dropped
// connections), as opposed to an answer that refused it.
func unanswered(err error) bool {
	if _, answered := errors.AsType[*sesame.APIError](err); answered {
		return false
	}
	return sesame.IsTransient(err) || errors.Is(err, context.DeadlineExceeded)
}

// unknownOutcome ends a command the cloud never answered: it may have moved
// the lock, so neither the old state nor "failed" would be the truth. The
// state becomes unknown (None), the result "unknown", and one status read
// follows to find out what the lock did.
func (w *worker) unknownOutcome(j *job, action hass.Action, err error) {
	w.log.Warn("command not answered by the cloud; its outcome is unknown, reading the lock", "command", action.String(), "err", err)
	w.publishState(hass.Reset)
	w.result(j, action, hass.ResultUnknown, "the Sesame cloud did not answer, so it may have carried the command out: "+describeErr(err, w.b.timing.Freshness)+"; reading the lock")
	w.requestRead(readUnknown)
}

// fail ends a command that could not be sent, and puts the last confirmed
// state back (LOCKING/UNLOCKING may have been published).
func (w *worker) fail(ctx context.Context, j *job, action hass.Action, err error) {
	if ctx.Err() != nil && !refused(err) {
		w.interrupted(ctx, j, action, phaseBefore, err)
		return
	}
	detail := describeErr(err, w.b.timing.Freshness)
	w.log.Error("command failed", "command", action.String(), "err", err)
	w.publishState(w.confirmedState())
	w.result(j, action, hass.ResultFailed, detail)
}

// describeErr says what went wrong in words an automation's notification can
// carry.
func describeErr(err error, freshness time.Duration) string {
	switch {
	case errors.Is(err, sesame.ErrForbidden):
		return "forbidden by the Sesame cloud: check the API key and that the lock is shared with it"
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("the Sesame cloud did not accept the command within %s: %v", freshness, err)
	}
	return err.Error()
}

// read is a background or on-demand status read.
// A command arriving meanwhile cancels it.
func (w *worker) read(ctx context.Context, k readKind) {
	rctx, cancel := context.WithCancel(ctx)
	w.mu.Lock()
	if w.pending != nil {
		// A command came in while this read waited: it goes first (and
		// reads the lock itself when it needs to). Checked under the lock
		// submit takes, so a command either sees this read or is seen here.
		w.mu.Unlock()
		cancel()
		w.log.Debug("status read skipped: a command is waiting", "reason", k.String())
		return
	}
	if k == readBackground {
		if !w.liveReadAt.IsZero() && time.Since(w.liveReadAt) < dupReadWindow {
			// Two triggers at once (the start-up grace ending as the feed
			// is declared failing): one read answers both.
			w.mu.Unlock()
			cancel()
			w.log.Debug("status read skipped: the lock was read a moment ago", "reason", k.String())
			return
		}
	}
	w.reading = cancel
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.reading = nil
		w.mu.Unlock()
		cancel()
	}()
	st, err := w.readStatus(rctx)
	if err != nil {
		if rctx.Err() == nil {
			w.log.Warn("status read failed", "reason", k.String(), "err", err)
		}
		return
	}
	w.publishState(stateOf(st))
	w.settle(stateOf(st), time.Now())
	w.log.Debug("status read", "reason", k.String(), "state", st.State)
}

// readStatus reads the lock, remembers and publishes what it says (the
// status payload only: the caller decides what the lock entity shows).
func (w *worker) readStatus(ctx context.Context) (sesame.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, w.b.timing.StatusTimeout)
	defer cancel()
	st, err := w.b.cloud.Status(ctx, w.lock.UUID)
	w.b.cloudAnswered(err)
	if err != nil {
		return st, err
	}
	now := time.Now()
	w.confirmed, w.isConfirmed = st, true
	w.lastRead.Store(now.UnixNano())
	w.liveReadAt = now
	sv := hass.NewStatus(st.Battery, st.Voltage, st.Position, st.HubOnline, st.RawState, st.Timestamp, now, hass.SourceWebAPI)
	payload, err := hass.JSON(sv)
	if err != nil {
		w.log.Error("cannot encode status", "err", err)
		return st, nil
	}
	w.pubMu.Lock()
	w.status, w.statusV, w.hasStatus = payload, sv, true
	w.b.send(w.b.topics.LockStatus(w.lock.ID), true, payload)
	w.pubMu.Unlock()
	w.b.stateChanged()
	return st, nil
}

// stateOf maps a status read to the lock entity's state. "moved" (turned by
// hand, or stopped between the end positions) is not unlocked: HA shows it as
// unknown.
func stateOf(st sesame.Status) hass.LockState {
	switch st.State {
	case sesame.StateLocked:
		return hass.Locked
	case sesame.StateUnlocked:
		return hass.Unlocked
	}
	return hass.Reset
}

func (w *worker) confirmedState() hass.LockState {
	if !w.isConfirmed {
		return hass.Reset
	}
	return stateOf(w.confirmed)
}

// publishState publishes the lock entity's state. Publishing under pubMu
// keeps the order of the outbox equal to the order of the changes, also
// against republish on reconnect.
func (w *worker) publishState(s hass.LockState) {
	w.pubMu.Lock()
	w.state = s
	w.b.send(w.b.topics.LockState(w.lock.ID), true, []byte(s))
	w.pubMu.Unlock()
	w.b.setJammed(w.lock.ID, s == hass.Jammed)
	w.b.stateChanged()
}

// publishMoving shows LOCKING/UNLOCKING right before the command is sent.
// Unlike publishState it never waits for room in the outbox: the command
// must not queue behind a burst of retained publishes (a reconnect's
// announce with many locks). Dropped when the outbox is full, it costs
// nothing lasting: the confirmed state follows through publishState.
func (w *worker) publishMoving(s hass.LockState) {
	w.pubMu.Lock()
	w.state = s
	w.b.pub.Publish(w.b.topics.LockState(w.lock.ID), 1, true, []byte(s))
	w.pubMu.Unlock()
	w.b.setJammed(w.lock.ID, false)
	w.b.stateChanged()
}

// republish publishes what is known after a (re)connect.
func (w *worker) republish() {
	w.pubMu.Lock()
	defer w.pubMu.Unlock()
	if w.status != nil {
		w.b.send(w.b.topics.LockStatus(w.lock.ID), true, w.status)
	}
	if w.state != "" {
		w.b.send(w.b.topics.LockState(w.lock.ID), true, []byte(w.state))
	}
}

// result publishes the non-retained message that ends every command. One
// the broker did not take (it was down) is kept for the next connect.
func (w *worker) result(j *job, action hass.Action, outcome, detail string) {
	cmd := j.action.String()
	if j.action == hass.ActionToggle && action != hass.ActionToggle {
		detail = action.String() + ": " + detail
	}
	r := hass.Result{Command: cmd, Result: outcome, Detail: detail, Source: j.source}
	w.mu.Lock()
	w.resultSeq++
	seq := w.resultSeq
	w.mu.Unlock()
	w.deliverResult(seq, r, time.Now())
	w.mu.Lock()
	hs := j.hooks
	j.hooks = nil
	w.mu.Unlock()
	for _, h := range hs {
		if h.done != nil {
			h.done(action, outcome, detail)
		}
	}
}

// deliverResult publishes r and follows its receipt: undelivered, it becomes
// the lock's pending result unless a newer one exists or was delivered.
func (w *worker) deliverResult(seq uint64, r hass.Result, at time.Time) {
	payload, err := hass.JSON(r)
	if err != nil {
		w.log.Error("cannot encode result", "err", err)
		return
	}
	w.b.pub.Deliver(context.Background(), w.b.topics.LockResult(w.lock.ID), 1, false, payload, func(delivered bool) {
		w.mu.Lock()
		defer w.mu.Unlock()
		switch {
		case delivered:
			w.deliveredSeq = max(w.deliveredSeq, seq)
			if w.undelivered != nil && w.undelivered.seq <= seq {
				w.undelivered = nil
			}
		case seq > w.deliveredSeq && (w.undelivered == nil || w.undelivered.seq < seq):
			w.undelivered = &pendingResult{seq: seq, r: r, at: at}
		}
	})
}

// replayResult publishes, once, the newest result the broker did not take,
// if it is younger than maxAge, marked as delayed.
func (w *worker) replayResult(now time.Time, maxAge time.Duration) {
	w.mu.Lock()
	p := w.undelivered
	w.undelivered = nil
	w.mu.Unlock()
	if p == nil {
		return
	}
	age := now.Sub(p.at)
	if age >= maxAge {
		w.log.Info("dropping a result that could not be published: too old", "command", p.r.Command, "result", p.r.Result, "age", age.Round(time.Second))
		return
	}
	r := p.r
	r.Delayed, r.EndedAt = true, p.at.UTC().Format(time.RFC3339)
	w.log.Info("publishing a result delayed by the MQTT outage", "command", r.Command, "result", r.Result, "age", age.Round(time.Millisecond))
	w.deliverResult(p.seq, r, p.at)
}

// refresh handles a press of the Refresh button: at most one read per
// RefreshEvery, and only from the allowance of background reads (never the
// reserve kept for commands).
func (w *worker) refresh(now time.Time) {
	every := w.b.timing.RefreshEvery
	w.mu.Lock()
	last := w.refreshAt
	if !last.IsZero() && now.Sub(last) < every {
		w.mu.Unlock()
		w.b.warn.Info("refresh coalesced", "refresh coalesced: the Refresh button was pressed again within the minimum interval",
			"lock", w.lock.Name, "last", now.Sub(last).Round(time.Millisecond), "min_interval", every)
		return
	}
	w.refreshAt = now
	w.mu.Unlock()
	if _, ok := w.b.budget.PollInterval(); !ok {
		w.b.warn.Warn("refresh refused", "refresh refused: this month's allowance for status reads is spent; the rest of the budget is kept for commands",
			"lock", w.lock.Name)
		w.result(&job{action: hass.ActionRefresh, source: SourceHA}, hass.ActionRefresh, hass.ResultFailed,
			"refused: this month's allowance for status reads is spent (the rest of the budget is kept for commands); reads resume next month")
		return
	}
	w.requestRead(readRefresh)
}

// settled reports whether the state shown is locked or unlocked.
func (w *worker) settled() bool {
	w.pubMu.Lock()
	defer w.pubMu.Unlock()
	return w.state == hass.Locked || w.state == hass.Unlocked
}

// saved is the lock's entry for the state file: the last status read and
// the state shown, with LOCKING/UNLOCKING saved as unknown (a command in
// flight when the bridge stops has no known outcome).
func (w *worker) saved() (savedLock, bool) {
	w.pubMu.Lock()
	defer w.pubMu.Unlock()
	if !w.hasStatus {
		return savedLock{}, false
	}
	st := w.state
	switch st {
	case hass.Locked, hass.Unlocked, hass.Jammed, hass.Reset:
	default:
		st = hass.Reset
	}
	sv := w.statusV
	sv.Restored = false
	return savedLock{State: st, Status: sv}, true
}

// restore shows what the state file says until the lock is read again. The
// status keeps its read_at and says it was restored; the state is not
// "confirmed": a toggle reads the lock first.
func (w *worker) restore(s savedLock) error {
	readAt, err := time.Parse(time.RFC3339, s.Status.ReadAt)
	if err != nil {
		return fmt.Errorf("read_at %q: %w", s.Status.ReadAt, err)
	}
	switch s.State {
	case hass.Locked, hass.Unlocked, hass.Jammed, hass.Reset:
	default:
		return fmt.Errorf("state %q", s.State)
	}
	sv := s.Status
	sv.Restored = true
	payload, err := hass.JSON(sv)
	if err != nil {
		return err
	}
	w.pubMu.Lock()
	w.state, w.status, w.statusV, w.hasStatus = s.State, payload, s.Status, true
	w.pubMu.Unlock()
	w.lastRead.Store(readAt.UnixNano())
	return nil
}
