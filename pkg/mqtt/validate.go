package mqtt

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"unicode/utf8"
)

// maxTopicLen is the longest topic MQTT can encode (a 16-bit length prefix).
const maxTopicLen = 65535

// defaultPorts is used when a broker URL names no port. Websocket URLs are
// left alone: their dialer applies the HTTP(S) default itself.
var defaultPorts = map[string]string{
	"tcp":   "1883",
	"mqtt":  "1883",
	"ssl":   "8883",
	"tls":   "8883",
	"mqtts": "8883",
}

// parseBrokerURL checks that raw is a broker URL paho can dial and fills in
// the default port for the plain and TLS schemes.
func parseBrokerURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("broker URL is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL, which may carry a password.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("broker URL: %w", err)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
	case "":
		return nil, fmt.Errorf("broker URL %q: no scheme (want tcp://, ssl://, ws:// or wss://)", u.Redacted())
	default:
		return nil, fmt.Errorf("broker URL %q: unsupported scheme %q (want tcp, mqtt, ssl, tls, mqtts, ws or wss)", u.Redacted(), u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("broker URL %q: no host", u.Redacted())
	}
	if port, ok := defaultPorts[u.Scheme]; ok && u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
	return u, nil
}

// validateTopicName checks a topic to publish on. A wildcard or an empty
// topic would make the broker drop the whole connection, so such a publish is
// refused here instead.
func validateTopicName(topic string) error {
	switch {
	case topic == "":
		return errors.New("empty topic")
	case len(topic) > maxTopicLen:
		return errors.New("topic too long")
	case !utf8.ValidString(topic):
		return errors.New("topic is not valid UTF-8")
	case strings.ContainsAny(topic, "+#\x00"):
		return errors.New("topic contains a wildcard or NUL")
	}
	return nil
}

// validateTopicFilter checks a subscription filter: '#' only as the whole last
// level, '+' only as a whole level.
func validateTopicFilter(filter string) error {
	switch {
	case filter == "":
		return errors.New("empty topic filter")
	case len(filter) > maxTopicLen:
		return errors.New("topic filter too long")
	case !utf8.ValidString(filter):
		return errors.New("topic filter is not valid UTF-8")
	case strings.ContainsRune(filter, 0):
		return errors.New("topic filter contains NUL")
	}
	levels := strings.Split(filter, "/")
	for i, l := range levels {
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			return fmt.Errorf("topic filter %q: '#' must be the whole last level", filter)
		}
		if strings.Contains(l, "+") && l != "+" {
			return fmt.Errorf("topic filter %q: '+' must be a whole level", filter)
		}
	}
	return nil
}
