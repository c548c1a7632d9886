package mqtt

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Why the bridge opens its own TCP connections.
//
// Mosquitto leaves TCP_NODELAY off by default, and Home Assistant's
// Mosquitto add-on does not turn it on. Nagle's algorithm then holds a small
// packet the broker writes while an earlier small packet of that connection
// is unacknowledged. The bridge publishes state at QoS 1, so the broker's
// last packet to us is often a PUBACK; our kernel delays its ACK of it (up to
// 40 ms on Linux, since we have nothing to send back), and the next command
// from Home Assistant waits behind it in the broker's socket: 20-40 ms from
// HA's command to the API request instead of under a millisecond.
//
// We cannot change the broker, but we can acknowledge at once: after every
// read the connection asks the kernel for an immediate ACK (TCP_QUICKACK,
// which Linux forgets again on its own, hence after every read). The cost is
// one setsockopt per read and a few more empty ACK segments.

// dialer opens the TCP (and TLS) connections for tcp:// and ssl:// brokers;
// ws:// and wss:// stay with paho's own WebSocket dialer.
type dialer struct {
	tls     *tls.Config // nil: the system roots, the broker's host name
	timeout time.Duration
}

// usesOwnDialer reports whether the scheme is one the dialer handles.
func usesOwnDialer(scheme string) bool {
	switch scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts":
		return true
	}
	return false
}

// open is paho's OpenConnectionFunc.
func (d dialer) open(uri *url.URL, _ paho.ClientOptions) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d.timeout)
	defer cancel()
	nd := net.Dialer{KeepAlive: keepAlive}
	raw, err := nd.DialContext(ctx, "tcp", uri.Host)
	if err != nil {
		return nil, err
	}
	conn := withQuickAck(raw)
	switch uri.Scheme {
	case "tcp", "mqtt":
		return conn, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if d.tls != nil {
		cfg = d.tls.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = uri.Hostname()
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, fmt.Errorf("tls handshake with %s: %w", uri.Host, err)
	}
	return tc, nil
}
