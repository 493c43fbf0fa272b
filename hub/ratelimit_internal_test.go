package hub

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/berth-dev/berth/errkind"
)

func TestLimiter(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	l := newLimiter(60, 3, func() time.Time { return now }) // one a second, three at once
	for i := range 3 {
		if err := l.allow("a"); err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	err := l.allow("a")
	if !errors.Is(err, errkind.TooMany) || err.Error() != "too many attempts from your address; try again in 1 seconds" {
		t.Errorf("4th attempt: %v", err)
	}
	if err := l.check("b"); err != nil {
		t.Errorf("another address: %v", err)
	}
	now = now.Add(500 * time.Millisecond)
	if err := l.check("a"); err == nil {
		t.Error("half a token is not an attempt")
	}
	now = now.Add(10 * time.Second)
	l.take("a")
	l.take("a")
	if err := l.check("a"); err != nil {
		t.Errorf("refilled to 3, took 2: %v", err)
	}

	// A flood of addresses: refilled buckets are dropped to make room.
	l = newLimiter(60, 3, func() time.Time { return now })
	for i := range maxBuckets {
		l.take(fmt.Sprint("flood-", i))
	}
	now = now.Add(time.Minute)
	l.take("new")
	if n := len(l.buckets); n != 1 {
		t.Errorf("%d buckets after pruning, want the new one only", n)
	}
	// When none has refilled, all are dropped rather than grow without end.
	for i := range maxBuckets {
		l.take(fmt.Sprint("flood-", i))
	}
	if n := len(l.buckets); n > maxBuckets {
		t.Errorf("%d buckets, more than %d", n, maxBuckets)
	}
}

func TestForwardedFor(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	tests := []struct {
		name, peer string
		xff        []string
		trusted    []netip.Prefix
		want       string
	}{
		{"no proxies trusted: the header is ignored", "203.0.113.9", []string{"198.51.100.1"}, nil, "203.0.113.9"},
		{"an untrusted peer's header is ignored", "203.0.113.9", []string{"198.51.100.1"}, trusted, "203.0.113.9"},
		{"one trusted proxy", "10.0.0.5", []string{"198.51.100.1"}, trusted, "198.51.100.1"},
		{"a client's own entries left of the proxy's count for nothing", "10.0.0.5", []string{"1.2.3.4, 198.51.100.1"}, trusted, "198.51.100.1"},
		{"two trusted hops", "10.0.0.5", []string{"198.51.100.1, 10.1.1.1"}, trusted, "198.51.100.1"},
		{"several headers are one list", "10.0.0.5", []string{"1.2.3.4", "198.51.100.1, 10.1.1.1"}, trusted, "198.51.100.1"},
		{"no header: the proxy", "10.0.0.5", nil, trusted, "10.0.0.5"},
		{"every hop trusted: the left-most", "10.0.0.5", []string{"10.9.9.9, 10.1.1.1"}, trusted, "10.9.9.9"},
		{"garbage stops at the last trusted hop", "10.0.0.5", []string{"198.51.100.1, not-an-ip, 10.1.1.1"}, trusted, "10.1.1.1"},
		{"a port is garbage too", "10.0.0.5", []string{"198.51.100.1:443"}, trusted, "10.0.0.5"},
		{"IPv6", "fd00::1", []string{" 2001:db8::7 "}, trusted, "2001:db8::7"},
		{"IPv4-mapped IPv6 hop", "10.0.0.5", []string{"::ffff:198.51.100.1"}, trusted, "198.51.100.1"},
		{"IPv4-mapped trusted hop", "10.0.0.5", []string{"198.51.100.1, ::ffff:10.1.1.1"}, trusted, "198.51.100.1"},
	}
	for _, tt := range tests {
		if got := forwardedFor(tt.peer, tt.xff, tt.trusted); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
		}
	}
}
