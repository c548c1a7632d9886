package mqtt

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http/httptest"
	"net/url"
	"runtime"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// quickAckState reads TCP_QUICKACK (1 while the kernel acknowledges at once).
func quickAckState(t *testing.T, c net.Conn) int {
	t.Helper()
	qc, ok := c.(*quickAckConn)
	if !ok {
		t.Fatalf("connection is %T, not a quick-ack connection", c)
	}
	var v int
	var gerr error
	if err := qc.raw.Control(func(fd uintptr) {
		v, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK)
	}); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

func TestDialTCPAcknowledgesEveryRead(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("TCP_QUICKACK is Linux's")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		for range 3 {
			_, _ = c.Write([]byte{0x40, 0x02, 0x00, 0x01}) // a PUBACK's size
			time.Sleep(50 * time.Millisecond)
		}
	}()
	conn, err := dialer{timeout: time.Second}.open(&url.URL{Scheme: "tcp", Host: ln.Addr().String()}, paho.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4)
	for i := range 3 {
		if _, err := io.ReadFull(conn, buf); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if got := quickAckState(t, conn); got != 1 {
			t.Fatalf("after read %d: TCP_QUICKACK = %d, want 1", i, got)
		}
	}
}

func TestDialTLSVerifiesAndKeepsQuickAck(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	srv.StartTLS()
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())

	conn, err := dialer{tls: &tls.Config{RootCAs: roots}, timeout: 2 * time.Second}.open(&url.URL{Scheme: "ssl", Host: u.Host}, paho.ClientOptions{})
	if err != nil {
		t.Fatalf("dial with the server's CA: %v", err)
	}
	tc, ok := conn.(*tls.Conn)
	if !ok {
		t.Fatalf("connection is %T, want *tls.Conn", conn)
	}
	if runtime.GOOS == "linux" {
		if _, ok := tc.NetConn().(*quickAckConn); !ok {
			t.Fatalf("TLS runs over %T, want the quick-ack connection", tc.NetConn())
		}
	}
	_ = conn.Close()

	// Without the CA the system roots do not know the test certificate.
	if _, err := (dialer{timeout: 2 * time.Second}).open(&url.URL{Scheme: "ssl", Host: u.Host}, paho.ClientOptions{}); err == nil {
		t.Fatal("dial without the CA succeeded, want a verification error")
	}
}

func TestOwnDialerSchemes(t *testing.T) {
	for scheme, want := range map[string]bool{"tcp": true, "mqtt": true, "ssl": true, "tls": true, "mqtts": true, "ws": false, "wss": false} {
		if got := usesOwnDialer(scheme); got != want {
			t.Errorf("usesOwnDialer(%q) = %v, want %v", scheme, got, want)
		}
	}
}
