package sesame

import (
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// The clock rules. A signature covers the time (in 256-s steps) and the
// cloud judges its freshness by its own clock, so a host whose clock is
// wrong (a Raspberry Pi that booted before NTP) signs commands the cloud
// accepts with a 200 and then ignores.
const (
	// ClockSkewThreshold: beyond this offset to the cloud's clock the
	// client signs with the cloud's time, and says so.
	ClockSkewThreshold = 30 * time.Second
	// clockNormal: at or below this offset the host's clock counts as right
	// again. The gap to the threshold keeps a clock that hovers around 30 s
	// (the Date header has a resolution of one second) from flapping.
	clockNormal = 20 * time.Second
	// clockRewarn: while skewed, a further warning only when the offset
	// moved this much from the one last logged.
	clockRewarn = 30 * time.Second
	// dateResolution: the Date header drops the fraction of its second.
	dateResolution = time.Second
	// clockJitter: a change of the offset smaller than this is the Date
	// header's resolution and the round trip, not news.
	clockJitter = 2 * time.Second
)

// clock measures the offset of the host's clock to the cloud's from the
// Date header of every answer, and gives the time to sign with.
type clock struct {
	log *slog.Logger

	changed chan struct{} // one slot: the offset moved, or the signing clock changed

	mu       sync.Mutex
	measured bool
	offset   time.Duration // cloud minus host, at the last answer
	skewed   bool          // signing with the cloud's time
	refCloud time.Time     // the cloud's time at refHost
	refHost  time.Time     // the host's reading then (with its monotonic clock)
	logged   time.Duration // the offset last warned about
	told     time.Duration // the offset last signalled on changed
}

func newClock(log *slog.Logger) *clock {
	return &clock{log: log, changed: make(chan struct{}, 1)}
}

// observe takes the Date header of an answer to a request sent at sent
// whose answer arrived at received (both by the host's clock). An absent or
// malformed header changes nothing. It returns the offset it measured.
func (c *clock) observe(date string, sent, received time.Time) (time.Duration, bool) {
	d, err := http.ParseTime(date)
	if err != nil {
		return 0, false
	}
	// The cloud wrote the header somewhere between sending and receiving,
	// and dropped the fraction of its second: the middle of both.
	host := sent.Add(received.Sub(sent) / 2)
	cloud := d.Add(dateResolution / 2)
	off := cloud.Sub(host.Round(0)) // wall clocks: the monotonic reading has no say here

	c.mu.Lock()
	was, wasMeasured := c.skewed, c.measured
	switch a := off.Abs(); {
	case a > ClockSkewThreshold:
		c.skewed = true
	case a <= clockNormal:
		c.skewed = false
	}
	c.measured, c.offset = true, off
	c.refCloud, c.refHost = cloud, host
	rewarn := c.skewed && was && (off-c.logged).Abs() > clockRewarn
	if c.skewed && (!was || rewarn) {
		c.logged = off
	}
	now := c.skewed
	tell := !wasMeasured || was != now || (off-c.told).Abs() >= clockJitter
	if tell {
		c.told = off
	}
	c.mu.Unlock()

	switch {
	case now && !was:
		c.log.Warn("the host's clock is "+DescribeOffset(off)+" the Sesame cloud's: signing commands with the cloud's time; fix the host's clock (NTP)",
			"offset", off.Round(time.Second), "threshold", ClockSkewThreshold)
	case rewarn:
		c.log.Warn("the host's clock is now "+DescribeOffset(off)+" the Sesame cloud's: signing commands with the cloud's time",
			"offset", off.Round(time.Second))
	case was && !now:
		c.log.Info("the host's clock agrees with the Sesame cloud's again: signing commands with the host's time",
			"offset", off.Round(time.Second))
	}
	if tell {
		select {
		case c.changed <- struct{}{}:
		default:
		}
	}
	return off, true
}

// signTime is the time to sign with when the host's clock says host: host
// itself, or, while the host's clock is off, the cloud's time as of the last
// answer plus the time elapsed since by the host's monotonic clock (so that
// NTP fixing the host's clock between two answers does not make the
// correction wrong).
func (c *clock) signTime(host time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.skewed {
		return host
	}
	return c.refCloud.Add(host.Sub(c.refHost))
}

// Offset returns the offset last measured (cloud minus host; positive when
// the host's clock is behind), whether the client signs with the cloud's
// time, and whether any answer carried a usable Date header yet.
func (c *clock) Offset() (offset time.Duration, corrected, measured bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset, c.skewed, c.measured
}

// describeOffset says "10m0s behind" for a positive offset (cloud minus
// host) and "10m0s ahead of" for a negative one.
// DescribeOffset words a clock offset (the cloud's minus the host's) for a
// log line: "10m0s behind" / "40s ahead of" (the cloud's clock).
func DescribeOffset(off time.Duration) string {
	if off >= 0 {
		return off.Round(time.Second).String() + " behind"
	}
	return (-off).Round(time.Second).String() + " ahead of"
}
