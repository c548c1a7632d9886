// Package logcapture collects log output in memory, safe for concurrent
// writers, so that tests can assert on what was logged — and on what never
// was: secrets, raw card UIDs.
package logcapture

import (
	"bytes"
	"log/slog"
	"sync"
)

// Buffer is an io.Writer that many goroutines may write to at once.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// New returns a text logger at debug level that writes into a new Buffer.
func New() (*slog.Logger, *Buffer) {
	b := &Buffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}
