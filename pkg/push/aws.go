package push

// The AWS side: an anonymous Cognito identity's temporary credentials, the
// SigV4-presigned WebSocket URL of the IoT endpoint and the signed shadow
// GET. The signatures come from aws-sdk-go-v2's signer; nothing here
// computes SigV4 itself.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentity"
	cognitotypes "github.com/aws/aws-sdk-go-v2/service/cognitoidentity/types"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
)

// Signing names of the two AWS IoT services the feed uses.
const (
	ServiceDeviceGateway = "iotdevicegateway" // the MQTT-over-WebSocket URL
	ServiceData          = "iotdata"          // the shadow GET
)

// EmptyPayloadHash is the hex SHA-256 of an empty body, signed for GETs.
const EmptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// renewMargin is how long before their expiry credentials are renewed (and
// the connection replaced), as homebridge-open-sesame does; short-lived
// credentials are renewed after three quarters of their life instead.
const renewMargin = 150 * time.Second

// minLifetime: credentials that expire sooner than this after they were
// handed out are refused (a machine clock far ahead of AWS's).
const minLifetime = 2 * time.Second

// creds are one set of temporary credentials. Every field that grants
// access is a sesame.Secret, so no printing path shows it.
type creds struct {
	accessKey sesame.Secret
	secret    sesame.Secret
	token     sesame.Secret
	obtained  time.Time
	expires   time.Time
}

// renewAt is when these credentials should be replaced.
func (c creds) renewAt() time.Time {
	margin := min(renewMargin, c.expires.Sub(c.obtained)/4)
	return c.expires.Add(-margin)
}

func (c creds) aws() aws.Credentials {
	return aws.Credentials{
		AccessKeyID:     c.accessKey.Reveal(),
		SecretAccessKey: c.secret.Reveal(),
		SessionToken:    c.token.Reveal(),
		CanExpire:       true,
		Expires:         c.expires,
	}
}

// LogValue shows only the expiry.
func (c creds) LogValue() slog.Value {
	return slog.GroupValue(slog.Time("expires", c.expires))
}

// cognitoAPI is the part of the Cognito client the push client uses.
type cognitoAPI interface {
	GetId(ctx context.Context, in *cognitoidentity.GetIdInput, opts ...func(*cognitoidentity.Options)) (*cognitoidentity.GetIdOutput, error)
	GetCredentialsForIdentity(ctx context.Context, in *cognitoidentity.GetCredentialsForIdentityInput, opts ...func(*cognitoidentity.Options)) (*cognitoidentity.GetCredentialsForIdentityOutput, error)
}

// credSource hands out credentials, renewing them when due. It keeps the
// identity id across renewals, as the official SDK does.
type credSource struct {
	api  cognitoAPI
	pool string
	now  func() time.Time

	mu       sync.Mutex
	identity string
	cur      creds
	secrets  *secretList
}

// get returns credentials valid until at least their renewal time.
func (s *credSource) get(ctx context.Context) (creds, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if !s.cur.expires.IsZero() && now.Before(s.cur.renewAt()) {
		return s.cur, nil
	}
	if s.identity == "" {
		out, err := s.api.GetId(ctx, &cognitoidentity.GetIdInput{IdentityPoolId: aws.String(s.pool)})
		if err != nil {
			return creds{}, fmt.Errorf("cognito GetId: %w", err)
		}
		if out.IdentityId == nil || *out.IdentityId == "" {
			return creds{}, errors.New("cognito GetId: no identity id in the answer")
		}
		s.identity = *out.IdentityId
	}
	out, err := s.api.GetCredentialsForIdentity(ctx, &cognitoidentity.GetCredentialsForIdentityInput{IdentityId: aws.String(s.identity)})
	if err != nil {
		var nf *cognitotypes.ResourceNotFoundException
		var na *cognitotypes.NotAuthorizedException
		if errors.As(err, &nf) || errors.As(err, &na) {
			s.identity = "" // ask for a new identity next time
		}
		return creds{}, fmt.Errorf("cognito GetCredentialsForIdentity: %w", err)
	}
	c := out.Credentials
	if c == nil || c.AccessKeyId == nil || c.SecretKey == nil || c.SessionToken == nil || c.Expiration == nil {
		return creds{}, errors.New("cognito GetCredentialsForIdentity: incomplete credentials in the answer")
	}
	got := creds{
		accessKey: sesame.NewSecret(*c.AccessKeyId),
		secret:    sesame.NewSecret(*c.SecretKey),
		token:     sesame.NewSecret(*c.SessionToken),
		obtained:  now,
		expires:   *c.Expiration,
	}
	s.secrets.add(*c.AccessKeyId, *c.SecretKey, *c.SessionToken)
	if got.expires.Sub(now) < minLifetime {
		return creds{}, fmt.Errorf("cognito GetCredentialsForIdentity: the credentials expire at %s, now is %s here: is this machine's clock right?",
			got.expires.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	s.cur = got
	return got, nil
}

// invalidate drops c if it is still the current set, so that the next get
// asks Cognito again.
func (s *credSource) invalidate(c creds) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur.accessKey.Reveal() == c.accessKey.Reveal() {
		s.cur = creds{}
	}
}

// presignURL returns the WebSocket URL of endpoint (ws:// or wss://,
// path /mqtt) presigned for the device gateway, with the session token
// appended after signing: AWS IoT does not sign it.
func presignURL(ctx context.Context, signer *v4.Signer, endpoint *url.URL, c creds, region string, at time.Time) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint.String(), nil)
	if err != nil {
		return "", fmt.Errorf("presign: %w", err)
	}
	unsigned := c.aws()
	unsigned.SessionToken = "" // signed without, appended below
	signed, _, err := signer.PresignHTTP(ctx, unsigned, req, EmptyPayloadHash, ServiceDeviceGateway, region, at)
	if err != nil {
		return "", fmt.Errorf("presign: %w", err)
	}
	return signed + "&X-Amz-Security-Token=" + url.QueryEscape(c.token.Reveal()), nil
}

// secretList remembers the last few credential values and URL signatures
// so that any text leaving the package (an error in a log line or a
// Health reason) can be scrubbed of them, whatever library produced it.
type secretList struct {
	mu   sync.Mutex
	vals []string
}

const keepSecrets = 32

func (l *secretList) add(vals ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range vals {
		if v != "" {
			l.vals = append(l.vals, v)
		}
	}
	if n := len(l.vals) - keepSecrets; n > 0 {
		l.vals = append(l.vals[:0:0], l.vals[n:]...)
	}
}

// amzParam matches a signing parameter in a URL, whatever its value.
var amzParam = regexp.MustCompile(`(?i)(X-Amz-(?:Signature|Security-Token|Credential)=)[^&\s"']*`)

// scrub replaces every remembered secret and every signing parameter in s
// with REDACTED.
func (l *secretList) scrub(s string) string {
	s = amzParam.ReplaceAllString(s, "${1}REDACTED")
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range l.vals {
		s = strings.ReplaceAll(s, v, "REDACTED")
		if q := url.QueryEscape(v); q != v {
			s = strings.ReplaceAll(s, q, "REDACTED")
		}
	}
	return s
}
