package web

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// changesOnly is an Access with nothing but a change signal.
type changesOnly struct {
	Access
	ch chan struct{}
}

func (c changesOnly) Changes() (<-chan struct{}, func()) { return c.ch, func() {} }
func (c changesOnly) Reader() string                     { return "connected" }

// An event stream outlives the server's read timeout.
func TestStreamOutlivesReadTimeout(t *testing.T) {
	old := readTimeout
	readTimeout = 100 * time.Millisecond
	t.Cleanup(func() { readTimeout = old })
	acc := changesOnly{ch: make(chan struct{}, 1)}
	s, err := New(Options{Access: acc, Ingress: true, Supervisor: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	defer func() { cancel(); <-done }()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + l.Addr().String() + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	if line, _ := r.ReadString('\n'); line != "event: hello\n" {
		t.Fatalf("first line %q", line)
	}
	time.Sleep(5 * readTimeout) // well past the read deadline
	acc.ch <- struct{}{}
	for {
		line, err := r.ReadString('\n')
		if err == io.EOF || err != nil {
			t.Fatalf("the stream ended past the read timeout: %v", err)
		}
		if line == "event: change\n" {
			return
		}
	}
}
