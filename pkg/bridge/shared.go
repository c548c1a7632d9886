package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"sync"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/access"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt"
)

// sharing keeps the access list in step with the other bridges of a
// building (ACCESS_SHARED): every card is a retained JSON document under
// <prefix>/cards/<topic hash>, versioned with a Lamport clock, the newest
// version of a card wins, removals are tombstones. The list stays local
// too: the door opens for valid cards while the broker is down, and the
// changes made meanwhile go out (and come in) after the reconnect.
type sharing struct {
	a      *Access
	prefix string

	mu       sync.Mutex
	inflight map[string]uint64 // uid -> version handed to the broker, not yet acknowledged
}

// SharedCardsFilter is what a bridge with a shared list subscribes to.
func SharedCardsFilter(prefix string) string { return prefix + "/cards/+" }

// SharedCardTopic is a card's topic: the UID never appears in a topic (topics
// show up in broker logs and ACL tools), only a hash of it. The hash is not
// keyed (every bridge must find the same topic) and a UID is short, so it
// hides nothing from whoever reads the payload, which carries the UID:
// broker ACLs must keep the prefix to the bridges.
func SharedCardTopic(prefix, uid string) string {
	h := sha256.Sum256([]byte("sesame2mqtt shared access\x00" + prefix + "\x00" + uid))
	return prefix + "/cards/" + hex.EncodeToString(h[:8])
}

func (s *sharing) isTopic(topic string) bool {
	rest, ok := strings.CutPrefix(topic, s.prefix+"/cards/")
	return ok && rest != "" && !strings.Contains(rest, "/")
}

// publishPending sends every local change the broker has not taken yet,
// but not one already on its way (every echo asks for a flush: resending
// what is in flight made a burst of N saves cost O(N²) publishes).
func (s *sharing) publishPending(ctx context.Context) {
	for _, r := range s.a.list.Pending() {
		s.mu.Lock()
		v, sending := s.inflight[r.UID]
		if !sending || v != r.Version {
			if s.inflight == nil {
				s.inflight = map[string]uint64{}
			}
			s.inflight[r.UID] = r.Version
		}
		s.mu.Unlock()
		if sending && v == r.Version {
			continue
		}
		s.publish(ctx, r)
	}
}

func (s *sharing) publish(ctx context.Context, r access.Record) {
	payload, err := json.Marshal(r)
	if err != nil {
		return
	}
	uid, version := r.UID, r.Version
	s.a.b.pub.Deliver(ctx, SharedCardTopic(s.prefix, r.UID), 1, true, payload, func(delivered bool) {
		s.mu.Lock()
		if s.inflight[uid] == version {
			delete(s.inflight, uid)
		}
		s.mu.Unlock()
		if !delivered {
			return // still pending: published again at the next flush or connect
		}
		s.a.list.Published(uid, version) // in memory; the next flush writes it
		s.a.signal(s.a.flush)
	})
}

// handle merges a card from the shared topic (retained or live), in
// memory and at once (a map write: never waits); the access goroutine
// writes the file. A copy older than ours is answered with ours, so that
// the broker keeps the newest.
func (s *sharing) handle(m mqtt.Message) {
	b := s.a.b
	if len(m.Payload) == 0 {
		return // a cleared topic says nothing
	}
	var r access.Record
	if err := json.Unmarshal(m.Payload, &r); err != nil {
		b.warn.Warn("bad shared card", "ignoring a shared card that does not parse", "topic", logTopic(m.Topic), "err", err)
		return
	}
	uid, ok := access.CanonicalUID(r.UID)
	if !ok || SharedCardTopic(s.prefix, uid) != m.Topic {
		b.warn.Warn("bad shared card", "ignoring a shared card whose UID does not belong to its topic", "topic", logTopic(m.Topic))
		return
	}
	changed, err := s.a.list.Merge(r)
	switch {
	case err != nil:
		b.warn.Warn("bad shared card", "ignoring a shared card", "topic", logTopic(m.Topic), "err", err)
		return
	case changed:
		verb := "updated"
		if r.Deleted {
			verb = "removed"
		}
		b.log.Info("shared access list: card "+verb, "holder", r.Name, "card", s.a.hashHex(uid), "by", r.UpdatedBy, "at", r.Node)
	}
	s.a.signal(s.a.flush) // write the file; publish ours if it is newer
}
