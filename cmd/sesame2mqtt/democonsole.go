package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/hass"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/libnfc"
)

// consoleOptions configure the demo's console.
type consoleOptions struct {
	out                     io.Writer
	url, username, password string // the broker the bridge uses
	base, lockID, lockName  string
	reader                  *demoReader // nil: no simulated reader
	noCgo                   bool        // no reader because the build has no cgo
	// turn turns the simulated lock by hand and says to what; nil: none.
	turn func() string
}

// console is the demo's terminal: it prints the lock's state changes, the
// command results and the reader's events as the bridge publishes them (a
// client of the same broker, as Home Assistant would be), and takes taps
// typed on the terminal or published on <base>/demo/tap.
type console struct {
	o      consoleOptions
	topics hass.Topics
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex // orders the lines and guards lastState
	lastState string
	now       func() time.Time
}

func startConsole(o consoleOptions) (*console, error) {
	ctx, cancel := context.WithCancel(context.Background())
	c := &console{o: o, topics: hass.Topics{Base: o.base}, cancel: cancel, now: time.Now}
	subs := []string{c.topics.LockState(o.lockID), c.topics.LockResult(o.lockID), c.topics.ReaderEvent(), c.topics.LockActivity(o.lockID)}
	if o.reader != nil {
		subs = append(subs, c.tapTopic())
	}
	if o.turn != nil {
		subs = append(subs, c.turnTopic())
	}
	client, err := mqtt.New(mqtt.Options{
		URL:           o.url,
		Username:      o.username,
		Password:      o.password,
		Subscriptions: subs,
		OnMessage:     c.handle,
		Timeout:       3 * time.Second,
		// Only problems, so the terminal says why nothing would show.
		Logger: slog.New(slog.NewTextHandler(o.out, &slog.HandlerOptions{Level: slog.LevelWarn})).With("component", "demo-console"),
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("demo console: %w", err)
	}
	c.wg.Add(1)
	go func() { defer c.wg.Done(); _ = client.Run(ctx) }()
	if stdin, ok := pollableStdin(); ok {
		c.wg.Add(1)
		go func() { defer c.wg.Done(); c.readLines(ctx, stdin) }()
	}
	return c, nil
}

func (c *console) tapTopic() string { return c.o.base + "/demo/tap" }

func (c *console) turnTopic() string { return c.o.base + "/demo/turn" }

// turnByHand turns the simulated lock as a hand on the thumb turn would.
func (c *console) turnByHand() {
	if c.o.turn == nil {
		return
	}
	to := c.o.turn()
	c.printf("%s: turned by hand to %s", c.o.lockName, to)
}

func (c *console) stop() {
	c.cancel()
	c.wg.Wait()
}

// printf writes one timestamped line.
func (c *console) printf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.printLocked(format, args...)
}

func (c *console) printLocked(format string, args ...any) {
	fmt.Fprintf(c.o.out, "%s  %s\n", c.now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// handle runs on the MQTT client's delivery goroutine, one message at a time.
func (c *console) handle(m mqtt.Message) {
	if m.Retained {
		// Left on the broker by an earlier run (or before this console
		// subscribed): not something that happens now.
		return
	}
	switch m.Topic {
	case c.tapTopic():
		if c.o.reader != nil {
			c.o.reader.ask(string(m.Payload))
		}
	case c.turnTopic():
		if strings.TrimSpace(string(m.Payload)) == "turn" {
			c.turnByHand()
		}
	case c.topics.LockActivity(c.o.lockID):
		c.activity(m.Payload)
	case c.topics.LockState(c.o.lockID):
		c.state(string(m.Payload))
	case c.topics.LockResult(c.o.lockID):
		c.result(m.Payload)
	case c.topics.ReaderEvent():
		c.event(m.Payload)
	}
}

func (c *console) state(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s == c.lastState {
		return // the same state published again (a read-back, a reconnect)
	}
	c.lastState = s
	if s == "None" {
		s = "unknown"
	}
	c.printLocked("%s: %s", c.o.lockName, s)
}

func (c *console) result(payload []byte) {
	var r struct {
		Command, Result, Detail, Source string
	}
	if err := json.Unmarshal(payload, &r); err != nil {
		c.printf("%s: a result the console cannot read: %v", c.o.lockName, err)
		return
	}
	line := fmt.Sprintf("%s: %s %s", c.o.lockName, r.Command, r.Result)
	if r.Detail != "" {
		line += ": " + r.Detail
	}
	if r.Source != "" {
		line += " (from " + r.Source + ")"
	}
	c.printf("%s", line)
}

func (c *console) activity(payload []byte) {
	var a hass.Activity
	if err := json.Unmarshal(payload, &a); err != nil {
		c.printf("%s: an activity the console cannot read: %v", c.o.lockName, err)
		return
	}
	c.printf("%s: activity %s by %s (%s)", c.o.lockName, a.EventType, a.By, a.Method)
}

func (c *console) event(payload []byte) {
	var e struct {
		EventType string `json:"event_type"`
		Holder    string `json:"holder"`
		Action    string `json:"action"`
		Reason    string `json:"reason"`
	}
	if err := json.Unmarshal(payload, &e); err != nil {
		c.printf("reader: an event the console cannot read: %v", err)
		return
	}
	line := "reader: " + e.EventType
	if e.Holder != "" {
		line += ", " + e.Holder
	}
	if e.Action != "" {
		line += " (" + e.Action + ")"
	}
	if e.Reason != "" {
		line += ": " + e.Reason
	}
	c.printf("%s", line)
}

// readLines takes card names from the terminal. Stdin is pollable, so the
// read deadline set at stop ends it.
func (c *console) readLines(ctx context.Context, f *os.File) {
	stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Now()) })
	defer func() {
		stop()
		f.Fd() // puts the shared terminal back in blocking mode for the shell
		_ = f.Close()
	}()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
		case line == "turn" && c.o.turn != nil:
			c.turnByHand()
		case c.o.reader != nil:
			c.o.reader.ask(line)
		case c.o.noCgo:
			c.printf("no tap: %s", libnfc.Install)
		default:
			c.printf("no tap: NFC_DEVICE is set, so the demo uses that reader, not a simulated one")
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		c.printf("demo: reading the terminal: %v", err)
	}
}

// pollableStdin returns stdin as a file the runtime poller can interrupt
// (a terminal or a pipe), or false for a regular file, which the poller
// cannot wait on.
func pollableStdin() (*os.File, bool) {
	fi, err := os.Stdin.Stat()
	if err != nil || fi.Mode().IsRegular() {
		return nil, false
	}
	fd, err := syscall.Dup(int(os.Stdin.Fd()))
	if err != nil {
		return nil, false
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		_ = syscall.Close(fd)
		return nil, false
	}
	return os.NewFile(uintptr(fd), "stdin"), true
}
