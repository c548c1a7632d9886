package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/hass"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
)

// readKind says why a status read is wanted.
type readKind int

const (
	readBackground readKind = iota + 1
	readRefresh
)

func (k readKind) String() string {
	if k == readRefresh {
		return "refresh"
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

	lastRead atomic.Int64 // unix nanos of the last successful read

	mu      sync.Mutex
	pending *job               // newest command not yet started: a one-slot mailbox
	current *job               // command being carried out
	reading context.CancelFunc // cancels a background read in progress
	state   hass.LockState
	status  []byte // last status payload published

	// Owned by the worker goroutine.
	confirmed   sesame.Status
	isConfirmed bool
}

func newWorker(b *Bridge, l Lock) *worker {
	return &worker{
		b:     b,
		lock:  l,
		log:   b.log.With("lock", l.Name, "uuid", l.UUID),
		wake:  make(chan struct{}, 1),
		reads: make(chan readKind, 1),
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
			return
		case <-w.wake:
			for j := w.take(ctx); j != nil; j = w.take(ctx) {
				w.execute(j)
				w.finish(j)
			}
		case k := <-w.reads:
			w.read(ctx, k)
		}
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
	w.publishState(moving)
	if err := w.b.cloud.Command(deadline, w.lock.UUID, w.lock.Secret, cmd, j.source); err != nil {
		w.b.cloudAnswered(err)
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

// confirm reads the lock back until it reports the target state.
func (w *worker) confirm(ctx context.Context, j *job, action hass.Action, target hass.LockState, accepted time.Time) {
	var last string
	for _, at := range w.b.timing.ConfirmAt {
		t := time.NewTimer(time.Until(accepted.Add(at)))
		select {
		case <-ctx.Done():
			t.Stop()
			w.interrupted(ctx, j, action)
			return
		case <-t.C:
		}
		st, err := w.readStatus(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			w.interrupted(ctx, j, action)
			return
		case err != nil:
			last = "status read failed: " + err.Error()
			w.log.Warn("confirmation read failed", "err", err)
			continue
		case stateOf(st) == target:
			w.publishState(target)
			detail := fmt.Sprintf("%s (confirmed after %s)", st.State, at)
			w.log.Info("command confirmed", "command", action.String(), "after", at)
			w.result(j, action, hass.ResultSuccess, detail)
			return
		case st.HubOnline != nil && !*st.HubOnline:
			last = fmt.Sprintf("the hub is offline; the lock reports %s", st.State) + w.b.clockHint(st, time.Now())
		default:
			last = fmt.Sprintf("the lock reports %s", st.State) + w.b.clockHint(st, time.Now())
		}
	}
	wait := w.b.timing.ConfirmAt[len(w.b.timing.ConfirmAt)-1]
	detail := fmt.Sprintf("not %s after %s: %s", target, wait, last)
	w.log.Warn("lock did not reach the target state; reporting jammed", "command", action.String(), "why", detail)
	w.publishState(hass.Jammed)
	w.result(j, action, hass.ResultJammed, detail)
}

// interrupted ends a command whose context was cancelled: by a newer command
// (which publishes its own state) or by shutdown.
func (w *worker) interrupted(ctx context.Context, j *job, action hass.Action) {
	if errors.Is(context.Cause(ctx), errSuperseded) {
		w.log.Info("command superseded while in flight", "command", action.String())
		w.result(j, action, hass.ResultFailed, "superseded by a newer command")
		return
	}
	// Shutdown: what was published as LOCKING/UNLOCKING was never read back.
	w.log.Warn("command interrupted by shutdown; its outcome is unknown", "command", action.String())
	w.publishState(w.confirmedState())
	w.result(j, action, hass.ResultFailed, "interrupted: the bridge is shutting down")
}

// fail ends a command that could not be sent, and puts the last confirmed
// state back (LOCKING/UNLOCKING may have been published).
func (w *worker) fail(ctx context.Context, j *job, action hass.Action, err error) {
	if ctx.Err() != nil {
		w.interrupted(ctx, j, action)
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
	payload, err := hass.JSON(hass.NewStatus(st.Battery, st.Voltage, st.Position, st.HubOnline, st.RawState, st.Timestamp, now))
	if err != nil {
		w.log.Error("cannot encode status", "err", err)
		return st, nil
	}
	w.mu.Lock()
	w.status = payload
	w.b.pub.Publish(w.b.topics.LockStatus(w.lock.ID), 1, true, payload)
	w.mu.Unlock()
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

// publishState publishes the lock entity's state. Publishing under the mutex
// keeps the order of the outbox equal to the order of the changes, also
// against republish on reconnect.
func (w *worker) publishState(s hass.LockState) {
	w.mu.Lock()
	w.state = s
	w.b.pub.Publish(w.b.topics.LockState(w.lock.ID), 1, true, []byte(s))
	w.mu.Unlock()
	w.b.setJammed(w.lock.ID, s == hass.Jammed)
}

// republish publishes what is known after a (re)connect.
func (w *worker) republish() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.status != nil {
		w.b.pub.Publish(w.b.topics.LockStatus(w.lock.ID), 1, true, w.status)
	}
	if w.state != "" {
		w.b.pub.Publish(w.b.topics.LockState(w.lock.ID), 1, true, []byte(w.state))
	}
}

// result publishes the non-retained message that ends every command.
func (w *worker) result(j *job, action hass.Action, outcome, detail string) {
	cmd := j.action.String()
	if j.action == hass.ActionToggle && action != hass.ActionToggle {
		detail = action.String() + ": " + detail
	}
	w.b.publishJSON(w.b.topics.LockResult(w.lock.ID), false, hass.Result{Command: cmd, Result: outcome, Detail: detail, Source: j.source})
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
