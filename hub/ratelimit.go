package hub

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/errkind"
)

// errTooMany is what a limited client gets (HTTP 429).
type errTooMany struct{ retryAfter time.Duration }

func (e *errTooMany) Error() string {
	return fmt.Sprintf("too many attempts from your address; try again in %d seconds", int(math.Ceil(e.retryAfter.Seconds())))
}
func (e *errTooMany) Unwrap() error { return errkind.TooMany }

// limiter is a token bucket per client address, for the things a guesser
// repeats: failed setup codes, OIDC callbacks and token authentications,
// and new login requests. It lives in memory, per replica: N replicas
// behind a load balancer let a client through up to N times the rate,
// which still turns guessing a 128-bit code into a crawl, so sharing the
// buckets through the database is not worth a write per request.
type limiter struct {
	rate  float64 // tokens per second
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// maxBuckets bounds the memory a flood of addresses can take.
const maxBuckets = 100_000

func newLimiter(perMinute, burst int, now func() time.Time) *limiter {
	return &limiter{rate: float64(perMinute) / 60, burst: float64(burst), now: now, buckets: map[string]*bucket{}}
}

// refill returns key's bucket brought up to now; l.mu is held.
func (l *limiter) refill(key string) *bucket {
	now := l.now()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			l.prune(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	}
	if d := now.Sub(b.at).Seconds(); d > 0 {
		b.tokens = math.Min(l.burst, b.tokens+d*l.rate)
		b.at = now
	}
	return b
}

// prune drops the buckets that have refilled (they hold nothing a new
// bucket would not), or all of them when every one is in use.
func (l *limiter) prune(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.at).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxBuckets {
		clear(l.buckets)
	}
}

// check refuses key when its bucket is empty, without taking from it.
func (l *limiter) check(key string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.refill(key); b.tokens < 1 {
		return &errTooMany{retryAfter: time.Duration((1 - b.tokens) / l.rate * float64(time.Second))}
	}
	return nil
}

// take counts one attempt (a failure) against key.
func (l *limiter) take(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refill(key)
	b.tokens = math.Max(0, b.tokens-1)
}

// allow counts an attempt that is limited whether or not it succeeds.
func (l *limiter) allow(key string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refill(key)
	if b.tokens < 1 {
		return &errTooMany{retryAfter: time.Duration((1 - b.tokens) / l.rate * float64(time.Second))}
	}
	b.tokens--
	return nil
}

// clientIP is the address a request came from, as withClientIP found it:
// the TCP peer, or behind a trusted proxy the address that proxy saw.
func clientIP(r *http.Request) string {
	if ip, ok := r.Context().Value(clientIPKey).(string); ok {
		return ip
	}
	return peerIP(r)
}

func peerIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// forwardedFor returns the client address of a request whose TCP peer is
// peer: peer itself unless it is a trusted proxy; then the right-most
// X-Forwarded-For entry that is not a trusted proxy. Entries left of it
// were written by the client and prove nothing, so a client cannot pick
// the address its rate limit and audit entries are charged to. An entry
// that does not parse ends the walk at the last trusted hop.
func forwardedFor(peer string, xff []string, trusted []netip.Prefix) string {
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a.Unmap()) {
				return true
			}
		}
		return false
	}
	a, err := netip.ParseAddr(peer)
	if err != nil || !isTrusted(a) {
		return peer
	}
	var hops []string
	for _, h := range xff {
		hops = append(hops, strings.Split(h, ",")...)
	}
	last := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return last
		}
		if !isTrusted(a) {
			return a.Unmap().String()
		}
		last = a.Unmap().String()
	}
	return last
}

// withClientIP puts the request's client address (see forwardedFor) in its
// context, once, for rate limits, login requests and the audit log.
func (s *Server) withClientIP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip := forwardedFor(peerIP(r), r.Header.Values("X-Forwarded-For"), s.TrustedProxies)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientIPKey, ip)))
	})
}

// authState is the hub's in-memory sign-in state: rate limits and the
// OIDC provider, found on first use.
type authState struct {
	failures      *limiter // failed setup codes, OIDC callbacks, tokens, poll secrets
	loginRequests *limiter // new berth login requests

	oidcMu sync.Mutex
	oidc   *oidcClient // discovered on first use
}

func (s *Server) limits() *authState {
	s.authOnce.Do(func() {
		n := s.FailedAuthLimit
		if n <= 0 {
			n = 10
		}
		s.auth = &authState{
			failures:      newLimiter(n, n, s.now),
			loginRequests: newLimiter(6, 6, s.now),
		}
	})
	return s.auth
}
