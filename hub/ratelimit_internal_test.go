package hub

import (
	"errors"
	"fmt"
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
