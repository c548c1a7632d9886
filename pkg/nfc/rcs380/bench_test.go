package rcs380_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/rcs380"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/nfc/rcs380/rcs380sim"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIdleCPU is the CPU the reader loop spends polling an empty
// field, in percent of one core over a 5 s window of real time (getrusage:
// the whole process, so the simulated chip's own work is counted too: an
// upper bound for the driver). On a real RC-S380 the chip's work is not
// ours, and every poll waits on USB.
func BenchmarkIdleCPU(b *testing.B) {
	sim := rcs380sim.New(rcs380sim.Options{})
	dial := func(string) (rcs380.Transport, string, error) {
		tr, err := sim.Open()
		return tr, sim.Name(), err
	}
	r, err := nfc.NewReader(nfc.Options{
		Connstring: "rcs380",
		Open: func(conn string) (nfc.Device, error) {
			d, err := rcs380.Open(conn, dial, nil)
			if err != nil {
				return nil, err
			}
			return d, nil
		},
		OnTap: func(nfc.Card, time.Time) {},
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	if err := sim.WaitSense(wctx); err != nil {
		b.Fatal(err)
	}
	wcancel()
	const window = 5 * time.Second
	var pct float64
	for range b.N {
		before, start, senses := cpuTime(), time.Now(), sim.Stats().SensReqs
		time.Sleep(window)
		used, wall := cpuTime()-before, time.Since(start)
		cycles := sim.Stats().SensReqs - senses
		pct = 100 * float64(used) / float64(wall)
		b.ReportMetric(float64(cycles)/wall.Seconds(), "polls/s")
		b.ReportMetric(float64(used.Microseconds())/float64(max(cycles, 1)), "cpu-µs/poll")
	}
	b.ReportMetric(pct, "cpu-%")
	b.ReportMetric(0, "ns/op")
}
