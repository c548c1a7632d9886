package mqtt_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/mqtt/mosquittotest"
)

// With MQTT 3.1.1 a broker acknowledges a publish its ACL denies and drops
// it: the only way for the client to notice is to miss its own message. The
// client subscribes to its will topic and warns when the birth it publishes
// there on connect does not come back.
func TestDeniedBirthIsReported(t *testing.T) {
	t.Parallel()
	const will = "echo/bridge/availability"
	for _, tc := range []struct {
		name   string
		acl    string
		denied bool
	}{
		{"allowed", "topic readwrite echo/#\n", false},
		{"write denied", "topic read echo/#\n", true},
		{"read denied", "topic write echo/#\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := mosquittotest.Start(t, mosquittotest.WithLogin("admin", "admin-pw"), mosquittotest.WithUser("bridge", "bridge-pw"),
				mosquittotest.WithACL("user admin\ntopic readwrite #\n\nuser bridge\n"+tc.acl))
			b.Publish(t, will, "online", true) // an old retained birth must not count as the echo
			log, logs := newLogger(t)
			var c *mqtt.Client
			onConnect, connected := signalChan()
			c, err := mqtt.New(mqtt.Options{
				URL: b.URL(), Username: "bridge", Password: "bridge-pw",
				WillTopic: will, WillPayload: "offline",
				Subscriptions: []string{"echo/+/set"},
				OnConnect: func() {
					c.Publish(will, 1, true, []byte("online"))
					onConnect()
				},
				Logger: log,
			})
			if err != nil {
				t.Fatal(err)
			}
			run(t, c)
			waitSignal(t, connected, 5*time.Second, "OnConnect")
			const warning = `level=WARN msg="mqtt own publish did not come back`
			deadline := time.Now().Add(10 * time.Second)
			for {
				out := logs.String()
				if tc.denied && strings.Contains(out, warning) {
					if !strings.Contains(out, "topic="+will) || !strings.Contains(out, "ACL") {
						t.Errorf("the warning names neither the topic nor the ACL:\n%s", out)
					}
					return
				}
				if !tc.denied && strings.Contains(out, "mqtt own publish came back") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("neither the echo nor the warning within 10 s (denied=%v)", tc.denied)
				}
				time.Sleep(50 * time.Millisecond)
			}
			// Allowed: past the echo timeout no warning follows.
			time.Sleep(5500 * time.Millisecond)
			if strings.Contains(logs.String(), warning) {
				t.Errorf("warned although the birth came back:\n%s", logs.String())
			}
		})
	}
}
