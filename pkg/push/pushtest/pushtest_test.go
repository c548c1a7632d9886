package pushtest_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentity"
	"github.com/gorilla/websocket"

	"github.com/sesame2mqtt/sesame2mqtt/pkg/push"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/push/pushtest"
	"github.com/sesame2mqtt/sesame2mqtt/pkg/sesame"
)

// credentials asks the fake Cognito for credentials through the SDK.
func credentials(t *testing.T, srv *pushtest.Server) aws.Credentials {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	api := cognitoidentity.New(cognitoidentity.Options{Region: srv.Region(), BaseEndpoint: aws.String(srv.CognitoURL())})
	id, err := api.GetId(ctx, &cognitoidentity.GetIdInput{IdentityPoolId: aws.String(srv.PoolID())})
	if err != nil {
		t.Fatal(err)
	}
	out, err := api.GetCredentialsForIdentity(ctx, &cognitoidentity.GetCredentialsForIdentityInput{IdentityId: id.IdentityId})
	if err != nil {
		t.Fatal(err)
	}
	c := out.Credentials
	return aws.Credentials{AccessKeyID: *c.AccessKeyId, SecretAccessKey: *c.SecretKey, SessionToken: *c.SessionToken, Expires: *c.Expiration}
}

// presigned builds the URL the way the push client does (token appended
// after signing), with the given credentials, time and service.
func presigned(t *testing.T, srv *pushtest.Server, c aws.Credentials, at time.Time, service string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.Endpoint(), nil)
	if err != nil {
		t.Fatal(err)
	}
	token := c.SessionToken
	c.SessionToken = ""
	u, _, err := v4.NewSigner().PresignHTTP(context.Background(), c, req, push.EmptyPayloadHash, service, srv.Region(), at)
	if err != nil {
		t.Fatal(err)
	}
	return u + "&X-Amz-Security-Token=" + url.QueryEscape(token)
}

// handshake dials the endpoint and returns the HTTP status of the answer.
func handshake(t *testing.T, u string) int {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: []string{"mqtt"}}
	ws, resp, err := d.Dial(u, nil)
	if ws != nil {
		_ = ws.Close()
	}
	if resp == nil {
		t.Fatalf("no HTTP answer: %v", err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

func TestEndpointVerifiesThePresignedURL(t *testing.T) {
	srv := pushtest.Start(t)
	good := credentials(t, srv)
	now := time.Now()

	if code := handshake(t, presigned(t, srv, good, now, push.ServiceDeviceGateway)); code != http.StatusSwitchingProtocols {
		t.Fatalf("a correct URL got HTTP %d", code)
	}
	wrongSecret := good
	wrongSecret.SecretAccessKey = strings.Repeat("0", len(good.SecretAccessKey))
	noToken := presigned(t, srv, good, now, push.ServiceDeviceGateway)
	noToken = noToken[:strings.Index(noToken, "&X-Amz-Security-Token=")]
	tampered := strings.Replace(presigned(t, srv, good, now, push.ServiceDeviceGateway), "X-Amz-Signature=", "X-Amz-Signature=0", 1)
	unknown := good
	unknown.AccessKeyID = "ASIAUNKNOWN"
	for name, u := range map[string]string{
		"wrong secret":    presigned(t, srv, wrongSecret, now, push.ServiceDeviceGateway),
		"no token":        noToken,
		"tampered":        tampered,
		"unknown key":     presigned(t, srv, unknown, now, push.ServiceDeviceGateway),
		"wrong service":   presigned(t, srv, good, now, push.ServiceData),
		"signed long ago": presigned(t, srv, good, now.Add(-time.Hour), push.ServiceDeviceGateway),
	} {
		if code := handshake(t, u); code != http.StatusForbidden {
			t.Errorf("%s: HTTP %d, want 403", name, code)
		}
	}
	if srv.Connections() != 1 || srv.Refused() != 6 {
		t.Fatalf("%d accepted, %d refused", srv.Connections(), srv.Refused())
	}
}

func TestEndpointRefusesExpiredCredentials(t *testing.T) {
	srv := pushtest.StartWith(t, pushtest.Options{CredentialTTL: 1500 * time.Millisecond})
	c := credentials(t, srv)
	for time.Now().Before(c.Expires) {
		time.Sleep(100 * time.Millisecond)
	}
	if code := handshake(t, presigned(t, srv, c, time.Now(), push.ServiceDeviceGateway)); code != http.StatusForbidden {
		t.Fatalf("expired credentials: HTTP %d", code)
	}
}

func TestShadowGETVerifiesTheSignature(t *testing.T) {
	srv := pushtest.Start(t)
	srv.SetShadow("AAAA", pushtest.Mechst(sesame.StateLocked, 6, 5), nil)
	c := credentials(t, srv)
	get := func(c aws.Credentials, service string) int {
		req, err := http.NewRequest(http.MethodGet, srv.ShadowURL()+"/things/sesame2/shadow?name=AAAA", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := v4.NewSigner().SignHTTP(context.Background(), c, req, push.EmptyPayloadHash, service, srv.Region(), time.Now()); err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(c, push.ServiceData); code != http.StatusOK {
		t.Fatalf("correct GET: HTTP %d", code)
	}
	bad := c
	bad.SecretAccessKey += "x"
	if code := get(bad, push.ServiceData); code != http.StatusForbidden {
		t.Fatalf("wrong secret: HTTP %d", code)
	}
	if code := get(c, push.ServiceDeviceGateway); code != http.StatusForbidden {
		t.Fatalf("wrong service: HTTP %d", code)
	}
	if srv.ShadowReads() != 1 || srv.ShadowRefused() != 2 {
		t.Fatalf("%d answered, %d refused", srv.ShadowReads(), srv.ShadowRefused())
	}
}

func TestCognitoChecksTargetAndBody(t *testing.T) {
	srv := pushtest.Start(t)
	post := func(target, body string) int {
		req, err := http.NewRequest(http.MethodPost, srv.CognitoURL()+"/", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", target)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("AWSCognitoIdentityService.GetId", `{"IdentityPoolId":"`+srv.PoolID()+`"}`); code != http.StatusOK {
		t.Fatalf("GetId: HTTP %d", code)
	}
	for name, tc := range map[string][2]string{
		"other pool":     {"AWSCognitoIdentityService.GetId", `{"IdentityPoolId":"ap-northeast-1:other"}`},
		"with Logins":    {"AWSCognitoIdentityService.GetId", `{"IdentityPoolId":"` + srv.PoolID() + `","Logins":{"x":"y"}}`},
		"unknown target": {"AWSCognitoIdentityService.ListPools", `{}`},
		"unknown id":     {"AWSCognitoIdentityService.GetCredentialsForIdentity", `{"IdentityId":"ap-northeast-1:nobody"}`},
		"not JSON":       {"AWSCognitoIdentityService.GetId", `x`},
	} {
		if code := post(tc[0], tc[1]); code != http.StatusBadRequest {
			t.Errorf("%s: HTTP %d, want 400", name, code)
		}
	}
	if srv.CredentialRequests() != 0 {
		t.Fatalf("%d credentials handed out", srv.CredentialRequests())
	}
}

func TestMechst(t *testing.T) {
	if got := pushtest.MechstFlags(6.109, 29, 0x0a); got != "640300801d00000a" {
		t.Fatalf("the reference's example encodes as %s", got)
	}
	for _, st := range []sesame.LockState{sesame.StateLocked, sesame.StateUnlocked, sesame.StateMoved} {
		d, err := push.Decode("x", []byte(`{"state":{"reported":{"mechst":"`+pushtest.Mechst(st, 5.8, -12)+`"}}}`))
		if err != nil {
			t.Fatal(err)
		}
		if d.Status.State != st || d.Status.Position != -12 || d.Status.Battery != 50 {
			t.Fatalf("%s: %+v", st, d.Status)
		}
	}
}
