package config

// The push feed: SESAME_PUSH, SESAME_PUSH_POOL_ID, SESAME_PUSH_REGION,
// SESAME_PUSH_ENDPOINT, SESAME_PUSH_COGNITO_URL and SESAME_PUSH_SHADOW_URL.
// The feed is unofficial (the AWS IoT shadows CANDY HOUSE's apps use), so
// every value it depends on can be set; the defaults are the official
// SDK's as of 2025-12. The endpoint and pool id are checked by pkg/push's
// own parsers, so the rule lives in one place.

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/push"
)

// Push configures the push feed.
type Push struct {
	Enabled    bool   // SESAME_PUSH: on (default) or off = polling only
	PoolID     string // Cognito identity pool, REGION:ID
	Region     string // AWS region; the pool id's region unless set
	Endpoint   string // IoT host name or ws:// / wss:// URL, as given
	CognitoURL string // "" = the region's Cognito endpoint
	ShadowURL  string // "" = https:// and the endpoint's host
}

// regionRe is an AWS region name such as ap-northeast-1.
var regionRe = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)

// pushDefaults are the defaults of the push variables (the tags of raw).
var pushDefaults = raw{Push: "on", PushPoolID: push.DefaultPoolID, PushEndpoint: push.DefaultEndpoint}

func parsePush(r raw) (Push, []error) {
	var p Push
	var errs []error
	switch strings.ToLower(r.Push) {
	case "on", "true":
		p.Enabled = true
	case "off", "false":
	default:
		errs = append(errs, fmt.Errorf("SESAME_PUSH: must be on or off, got %s", quote(r.Push)))
	}

	p.PoolID = r.PushPoolID
	poolRegion, err := push.RegionOf(r.PushPoolID)
	if err != nil {
		errs = append(errs, fmt.Errorf("SESAME_PUSH_POOL_ID: must be REGION:ID like %s, got %s", push.DefaultPoolID, quote(r.PushPoolID)))
	}
	p.Region = r.PushRegion
	if p.Region == "" {
		p.Region = poolRegion
	}
	if p.Region != "" && !regionRe.MatchString(p.Region) {
		key := "SESAME_PUSH_REGION"
		if r.PushRegion == "" {
			key = "SESAME_PUSH_POOL_ID"
		}
		errs = append(errs, fmt.Errorf("%s: %s is not an AWS region like ap-northeast-1", key, quote(p.Region)))
	}

	p.Endpoint = r.PushEndpoint
	if _, err := push.ParseEndpoint(r.PushEndpoint); err != nil {
		errs = append(errs, fmt.Errorf("SESAME_PUSH_ENDPOINT: must be a host name or a wss:// or ws:// URL without user info or query, got %s", quote(r.PushEndpoint)))
	}
	p.CognitoURL, err = parseHTTPURL("SESAME_PUSH_COGNITO_URL", r.PushCognitoURL)
	if err != nil {
		errs = append(errs, err)
	}
	p.ShadowURL, err = parseHTTPURL("SESAME_PUSH_SHADOW_URL", r.PushShadowURL)
	if err != nil {
		errs = append(errs, err)
	}
	return p, errs
}

// parseHTTPURL checks an optional absolute http(s) URL without user info
// or query and returns it without a trailing slash.
func parseHTTPURL(key, s string) (string, error) {
	if s == "" {
		return "", nil
	}
	u, err := parseURL(key, s)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%s: scheme must be http or https, got %s", key, quote(u.Scheme))
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New(key + ": must not contain user info, a query or a fragment")
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// pushWarnings: push settings that have no effect with SESAME_PUSH=off.
func pushWarnings(r raw) []string {
	if !strings.EqualFold(r.Push, "off") && !strings.EqualFold(r.Push, "false") {
		return nil
	}
	var out []string
	for _, v := range []struct{ key, val, def string }{
		{"SESAME_PUSH_POOL_ID", r.PushPoolID, pushDefaults.PushPoolID},
		{"SESAME_PUSH_REGION", r.PushRegion, ""},
		{"SESAME_PUSH_ENDPOINT", r.PushEndpoint, pushDefaults.PushEndpoint},
		{"SESAME_PUSH_COGNITO_URL", r.PushCognitoURL, ""},
		{"SESAME_PUSH_SHADOW_URL", r.PushShadowURL, ""},
	} {
		if v.val != "" && v.val != v.def {
			out = append(out, v.key+" is set but has no effect: SESAME_PUSH is off")
		}
	}
	return out
}

// redacted is the push block of Config.Redacted (nothing in it is secret).
func (p Push) redacted() map[string]any {
	return map[string]any{
		"enabled":     p.Enabled,
		"pool_id":     p.PoolID,
		"region":      p.Region,
		"endpoint":    redactURL(p.Endpoint),
		"cognito_url": redactURL(p.CognitoURL),
		"shadow_url":  redactURL(p.ShadowURL),
	}
}
