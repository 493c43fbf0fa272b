package hub

import (
	"fmt"
	"math"
	"net"
	"net/http"
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

// clientIP is the address a request came from: the TCP peer. Behind a
// reverse proxy that is the proxy; berth does not trust X-Forwarded-For,
// which any client can send.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
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
