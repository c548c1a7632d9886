package config

import (
	"strings"
	"testing"
)

func TestLoadPushDefaults(t *testing.T) {
	cleanEnv(t)
	setEnv(t, minimal())
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	want := Push{
		Enabled:  true,
		PoolID:   "ap-northeast-1:0a1820f1-dbb3-4bca-9227-2a92f6abf0ae",
		Region:   "ap-northeast-1",
		Endpoint: "d06107753ay3c67v7y9pa-ats.iot.ap-northeast-1.amazonaws.com",
	}
	if c.Push != want {
		t.Fatalf("push %+v, want %+v", c.Push, want)
	}
	if len(c.Warnings) != 0 {
		t.Fatalf("warnings %v", c.Warnings)
	}
}

func TestLoadPushEveryVariable(t *testing.T) {
	cleanEnv(t)
	setEnv(t, with(minimal(),
		"SESAME_PUSH", "OFF",
		"SESAME_PUSH_POOL_ID", "us-east-1:abc",
		"SESAME_PUSH_REGION", "eu-west-3",
		"SESAME_PUSH_ENDPOINT", "ws://127.0.0.1:8080/mqtt",
		"SESAME_PUSH_COGNITO_URL", "http://127.0.0.1:9000/",
		"SESAME_PUSH_SHADOW_URL", "https://shadow.example",
	))
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	want := Push{PoolID: "us-east-1:abc", Region: "eu-west-3", Endpoint: "ws://127.0.0.1:8080/mqtt",
		CognitoURL: "http://127.0.0.1:9000", ShadowURL: "https://shadow.example"}
	if c.Push != want {
		t.Fatalf("push %+v, want %+v", c.Push, want)
	}
	if len(c.Warnings) != 5 || !strings.Contains(strings.Join(c.Warnings, "\n"), "SESAME_PUSH_ENDPOINT is set but has no effect: SESAME_PUSH is off") {
		t.Fatalf("warnings %q", c.Warnings)
	}
	// The add-on's bool option writes true/false; the older endpoint as a host.
	setEnv(t, map[string]string{"SESAME_PUSH": "true", "SESAME_PUSH_ENDPOINT": "a3i4hui4gxwoo8-ats.iot.ap-northeast-1.amazonaws.com",
		"SESAME_PUSH_REGION": "", "SESAME_PUSH_POOL_ID": "", "SESAME_PUSH_COGNITO_URL": "", "SESAME_PUSH_SHADOW_URL": ""})
	if c, err = Load(); err != nil || !c.Push.Enabled || c.Push.Region != "ap-northeast-1" {
		t.Fatalf("%+v %v", c.Push, err)
	}
}

func TestLoadPushInvalid(t *testing.T) {
	for _, tc := range []struct{ key, val, want string }{
		{"SESAME_PUSH", "maybe", "SESAME_PUSH: must be on or off"},
		{"SESAME_PUSH_POOL_ID", "nocolon", "SESAME_PUSH_POOL_ID: must be REGION:ID"},
		{"SESAME_PUSH_POOL_ID", "Tokyo:1", "SESAME_PUSH_POOL_ID: \"Tokyo\" is not an AWS region"},
		{"SESAME_PUSH_REGION", "ap_northeast", "SESAME_PUSH_REGION: \"ap_northeast\" is not an AWS region"},
		{"SESAME_PUSH_ENDPOINT", "https://x.example", "SESAME_PUSH_ENDPOINT: must be a host name or a wss:// or ws:// URL"},
		{"SESAME_PUSH_ENDPOINT", "wss://u:p@x.example/mqtt", "SESAME_PUSH_ENDPOINT:"},
		{"SESAME_PUSH_ENDPOINT", "host/path", "SESAME_PUSH_ENDPOINT:"},
		{"SESAME_PUSH_COGNITO_URL", "ftp://x", "SESAME_PUSH_COGNITO_URL: scheme must be http or https"},
		{"SESAME_PUSH_COGNITO_URL", "http://x/?a=b", "SESAME_PUSH_COGNITO_URL: must not contain"},
		{"SESAME_PUSH_SHADOW_URL", "not a url", "SESAME_PUSH_SHADOW_URL:"},
		{"SESAME_PUSH_SHADOW_URL", "http://x:99999", "SESAME_PUSH_SHADOW_URL: port"},
	} {
		t.Run(tc.key+"="+tc.val, func(t *testing.T) {
			cleanEnv(t)
			setEnv(t, with(minimal(), tc.key, tc.val))
			_, err := Load()
			lines := errLines(err)
			if len(lines) != 1 || !strings.HasPrefix(lines[0], tc.want) {
				t.Fatalf("error %q, want one line starting %q", lines, tc.want)
			}
		})
	}
}

func TestRedactedShowsPush(t *testing.T) {
	cleanEnv(t)
	setEnv(t, minimal())
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	p, ok := c.Redacted()["push"].(map[string]any)
	if !ok || p["enabled"] != true || p["endpoint"] != c.Push.Endpoint {
		t.Fatalf("redacted push %v", c.Redacted()["push"])
	}
}
