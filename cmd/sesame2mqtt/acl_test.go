package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/hass"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt/mosquittotest"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame/sesametest"
)

const (
	haUser, haPass         = "homeassistant", "ha-pw-0451"
	bridgeUser, bridgePass = "sesame2mqtt", "bridge-pw-0452"
)

// documentedACL is the ACL of the README's "Broker access (ACL)" section,
// which addon/DOCS.md must repeat word for word.
func documentedACL(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- acl:begin[^>]*-->\\s*```\\n(.*?)```\\s*<!-- acl:end -->").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md: no ACL block between <!-- acl:begin --> and <!-- acl:end -->")
	}
	acl := string(m[1])
	docs, err := os.ReadFile(filepath.Join("..", "..", "addon", "DOCS.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(docs), "```\n"+acl+"```") {
		t.Errorf("addon/DOCS.md does not give the README's ACL:\n%s", acl)
	}
	if !strings.HasPrefix(acl, "user "+bridgeUser+"\n") {
		t.Fatalf("the documented ACL is not for the login %s:\n%s", bridgeUser, acl)
	}
	return acl
}

// aclBroker is a Mosquitto that enforces acl for the bridge's login; Home
// Assistant's login (the test helpers') may do anything.
func aclBroker(t *testing.T, acl string) *mosquittotest.Broker {
	t.Helper()
	return mosquittotest.Start(t,
		mosquittotest.WithLogin(haUser, haPass),
		mosquittotest.WithUser(bridgeUser, bridgePass),
		mosquittotest.WithACL("user "+haUser+"\ntopic readwrite #\n\n"+acl))
}

// TestDocumentedACLIsEnough runs the bridge with its own login against a
// Mosquitto that grants it exactly the documented ACL: discovery (and the
// clearing of a removed lock's), state, a command and its result, Home
// Assistant's birth, the clearing of a retained command all work, and the
// bridge's check of its own birth passes.
func TestDocumentedACLIsEnough(t *testing.T) {
	acl := documentedACL(t)
	broker := aclBroker(t, acl)
	fake := newFake(t)
	topics := hass.Topics{Base: "sesame2mqtt", Prefix: "homeassistant"}

	gone := hass.Discovery{Topics: topics}.LockConfig(hass.Lock{ID: "0badc0de", UUID: "0BADC0DE", Name: "Old door"})
	broker.Publish(t, topics.DeviceConfig("sesame_0badc0de"), string(hass.Marshal(gone)), true)
	broker.Publish(t, topics.LockCommand(lockID), "UNLOCK", true) // a retained command: cleared, never obeyed
	ha := broker.Subscribe(t, "#")

	p := startProc(t, append(bridgeEnv(t, broker, fake), "MQTT_USERNAME="+bridgeUser, "MQTT_PASSWORD="+bridgePass))
	ha.WaitFor(t, avail, is("online"), 10*time.Second)
	ha.WaitFor(t, topics.DeviceConfig(hass.LockDeviceID(lockID)), func(s string) bool { return strings.Contains(s, lockID) }, 10*time.Second)
	ha.WaitFor(t, topics.LockState(lockID), is("LOCKED"), 10*time.Second)
	ha.WaitFor(t, topics.Usage(), nil, 10*time.Second)
	ha.WaitFor(t, topics.DeviceConfig("sesame_0badc0de"), is(""), 10*time.Second)
	ha.WaitFor(t, topics.LockCommand(lockID), is(""), 10*time.Second)

	since := time.Now()
	client := broker.Connect(t)
	client.Publish(t, topics.LockCommand(lockID), "UNLOCK", false)
	ha.WaitForAfter(t, since, topics.LockState(lockID), is("UNLOCKED"), 15*time.Second)
	res := ha.WaitForAfter(t, since, topics.LockResult(lockID), nil, 5*time.Second)
	if !strings.Contains(res.Payload, `"result":"success"`) {
		t.Errorf("result %s, want success", res.Payload)
	}

	since = time.Now()
	client.Publish(t, topics.HAStatus(), "online", false)
	ha.WaitForAfter(t, since, topics.DeviceConfig(hass.LockDeviceID(lockID)), nil, 10*time.Second)

	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.stderr.String(), "mqtt own publish came back") {
		if time.Now().After(deadline) {
			t.Fatal("the bridge never saw its own birth come back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	logs := p.stderr.String()
	for _, bad := range []string{"did not come back", "refused subscription", "level=ERROR"} {
		if strings.Contains(logs, bad) {
			t.Errorf("the log has %q with the documented ACL", bad)
		}
	}
	if strings.Contains(broker.Logs(), "Denied") {
		t.Errorf("the broker denied the bridge something under the documented ACL:\n%s", broker.Logs())
	}
	if n := commandsSent(fake); n != 1 {
		t.Errorf("%d commands reached the cloud, want 1 (the retained UNLOCK must not count)", n)
	}
}

// TestACLWithoutBaseTopicIsReported: a login that may not write the base
// topic is invisible to Home Assistant, and nothing tells the bridge so.
// Its check of its own birth says it in the log.
func TestACLWithoutBaseTopicIsReported(t *testing.T) {
	acl := documentedACL(t)
	broken := strings.Replace(acl, "topic readwrite sesame2mqtt/#", "topic read sesame2mqtt/#", 1)
	if broken == acl {
		t.Fatal("the documented ACL has no readwrite line for the base topic")
	}
	broker := aclBroker(t, broken)
	fake := newFake(t)
	p := startProc(t, append(bridgeEnv(t, broker, fake), "MQTT_USERNAME="+bridgeUser, "MQTT_PASSWORD="+bridgePass))
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(p.stderr.String(), "mqtt own publish did not come back") {
		if time.Now().After(deadline) {
			t.Fatal("no warning about the denied birth within 15 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if line := grepLine(p.stderr.String(), "did not come back"); !strings.Contains(line, "level=WARN") ||
		!strings.Contains(line, "topic="+avail) || !strings.Contains(line, "ACL") {
		t.Errorf("the warning does not name the topic and the ACL: %s", line)
	}
	// What the README tells users to look for in the broker's log.
	if !strings.Contains(broker.Logs(), "Denied PUBLISH from sesame2mqtt-") {
		t.Errorf("the broker's log does not show the denial as the README says:\n%s", broker.Logs())
	}
}

// commandsSent counts the commands (POSTs) that reached the fake cloud.
func commandsSent(fake *sesametest.Server) int {
	n := 0
	for _, r := range fake.Requests() {
		if r.Method == "POST" {
			n++
		}
	}
	return n
}

func grepLine(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}
