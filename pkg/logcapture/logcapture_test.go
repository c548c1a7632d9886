package logcapture

import (
	"strings"
	"sync"
	"testing"
)

func TestConcurrentWriters(t *testing.T) {
	log, buf := New()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 100 {
				log.Debug("line", "writer", i)
			}
		})
	}
	wg.Wait()
	if n := strings.Count(buf.String(), "msg=line"); n != 800 {
		t.Fatalf("%d lines, want 800", n)
	}
}
