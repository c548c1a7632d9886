package config

import (
	"fmt"
	"strings"
	"testing"
)

func TestLoadWeb(t *testing.T) {
	for _, c := range []struct {
		env     []string
		want    Web
		wantErr string
	}{
		{nil, Web{Supervisor: DefaultIngressSupervisor}, ""},
		{[]string{"WEB_LISTEN", "127.0.0.1:8099"}, Web{Listen: "127.0.0.1:8099", Supervisor: DefaultIngressSupervisor}, ""},
		{[]string{"WEB_LISTEN", "localhost:8099"}, Web{Listen: "localhost:8099", Supervisor: DefaultIngressSupervisor}, ""},
		{[]string{"WEB_LISTEN", "[::1]:8099"}, Web{Listen: "[::1]:8099", Supervisor: DefaultIngressSupervisor}, ""},
		{[]string{"INGRESS_LISTEN", ":8099"}, Web{Ingress: ":8099", Supervisor: DefaultIngressSupervisor}, ""},
		// Refused: a page on the network without a password.
		{[]string{"WEB_LISTEN", ":8099"}, Web{}, "WEB_LISTEN: \":8099\" is not a loopback address, so the page needs WEB_PASSWORD"},
		{[]string{"WEB_LISTEN", "0.0.0.0:8099"}, Web{}, "needs WEB_PASSWORD"},
		{[]string{"WEB_LISTEN", "192.168.1.5:8099"}, Web{}, "needs WEB_PASSWORD"},
		{[]string{"WEB_LISTEN", "doorpi.local:8099"}, Web{}, "needs WEB_PASSWORD"},
		{[]string{"WEB_LISTEN", "8099"}, Web{}, "WEB_LISTEN: must be host:port"},
		{[]string{"WEB_LISTEN", "127.0.0.1:0"}, Web{}, "WEB_LISTEN: port must be 1-65535"},
		{[]string{"WEB_LISTEN", ":8099", "WEB_PASSWORD", "short"}, Web{}, "WEB_PASSWORD: at least 8 characters"},
		{[]string{"INGRESS_LISTEN", "x"}, Web{}, "INGRESS_LISTEN: must be host:port"},
		{[]string{"INGRESS_SUPERVISOR", "supervisor"}, Web{}, "INGRESS_SUPERVISOR: must be an IP address"},
		{[]string{"WEB_LISTEN", "127.0.0.1:8099", "INGRESS_LISTEN", "127.0.0.1:8099"}, Web{}, "the same address as INGRESS_LISTEN"},
	} {
		t.Run(fmt.Sprint(c.env), func(t *testing.T) {
			cleanEnv(t)
			setEnv(t, with(minimal(), c.env...))
			cfg, err := Load()
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				if strings.Contains(err.Error(), "short") && strings.Contains(strings.Join(c.env, " "), "short") {
					t.Errorf("the error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := cfg.Web
			got.Password = c.want.Password
			if got != c.want {
				t.Errorf("Web = %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestWebPasswordNeverShown(t *testing.T) {
	cleanEnv(t)
	const pw = "pa55word-very-secret"
	setEnv(t, with(minimal(), "WEB_LISTEN", ":8099", "WEB_PASSWORD", pw))
	cfg, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprint(cfg.Redacted())} {
		if strings.Contains(s, pw) {
			t.Errorf("the password shows: %s", s)
		}
	}
	if cfg.Redacted()["web"].(map[string]any)["password"] != "REDACTED" {
		t.Error("the summary does not say the password is set")
	}
	// A password without a listener is a warning, not an error.
	cleanEnv(t)
	setEnv(t, with(minimal(), "WEB_PASSWORD", pw))
	cfg, err = Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 1 || !strings.HasPrefix(cfg.Warnings[0], "WEB_PASSWORD is set but WEB_LISTEN is not") {
		t.Errorf("warnings %q", cfg.Warnings)
	}
}
