// Package storetest is the conformance suite every store driver passes.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/store"
)

// Run exercises s. newStore must return an empty store each call.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("PutGetStat", func(t *testing.T) { testPutGetStat(t, newStore(t)) })
	t.Run("CreateOnly", func(t *testing.T) { testCreateOnly(t, newStore(t)) })
	t.Run("IfMatch", func(t *testing.T) { testIfMatch(t, newStore(t)) })
	t.Run("Range", func(t *testing.T) { testRange(t, newStore(t)) })
	t.Run("List", func(t *testing.T) { testList(t, newStore(t)) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, newStore(t)) })
	t.Run("NotFound", func(t *testing.T) { testNotFound(t, newStore(t)) })
	t.Run("ConcurrentCreate", func(t *testing.T) { testConcurrentCreate(t, newStore(t)) })
	t.Run("UnknownSize", func(t *testing.T) { testUnknownSize(t, newStore(t)) })
	t.Run("FailedPutLeavesNothing", func(t *testing.T) { testFailedPut(t, newStore(t)) })
}

func put(t *testing.T, s store.Store, key string, data []byte, opts store.PutOptions) store.Info {
	t.Helper()
	info, err := s.Put(context.Background(), key, bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return info
}

func get(t *testing.T, s store.Store, key string, rng store.Range) []byte {
	t.Helper()
	rc, _, err := s.Get(context.Background(), key, rng)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b
}

// Random returns n random bytes.
func Random(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func testPutGetStat(t *testing.T, s store.Store) {
	data := Random(t, 4096)
	info := put(t, s, "a/b/c.bin", data, store.PutOptions{})
	if info.Size != int64(len(data)) || info.ETag == "" {
		t.Fatalf("put info = %+v, want size %d and an etag", info, len(data))
	}
	if got := get(t, s, "a/b/c.bin", store.Range{}); !bytes.Equal(got, data) {
		t.Fatal("get returned other bytes than were put")
	}
	st, err := s.Stat(context.Background(), "a/b/c.bin")
	if err != nil {
		t.Fatal(err)
	}
	if st.Size != int64(len(data)) || st.ETag != info.ETag || st.Key != "a/b/c.bin" {
		t.Fatalf("stat = %+v, want size %d etag %q", st, len(data), info.ETag)
	}
	// Overwrite without preconditions replaces.
	data2 := Random(t, 10)
	info2 := put(t, s, "a/b/c.bin", data2, store.PutOptions{})
	if info2.ETag == info.ETag {
		t.Fatal("etag did not change on overwrite")
	}
	if got := get(t, s, "a/b/c.bin", store.Range{}); !bytes.Equal(got, data2) {
		t.Fatal("overwrite not visible")
	}
}

func testCreateOnly(t *testing.T, s store.Store) {
	ctx := context.Background()
	first := []byte("first")
	put(t, s, "k", first, store.PutOptions{IfNoneMatch: true})
	_, err := s.Put(ctx, "k", strings.NewReader("second"), 6, store.PutOptions{IfNoneMatch: true})
	if !errors.Is(err, store.ErrPreconditionFailed) {
		t.Fatalf("second create-only put: err = %v, want ErrPreconditionFailed", err)
	}
	if got := get(t, s, "k", store.Range{}); !bytes.Equal(got, first) {
		t.Fatalf("create-only put replaced data: %q", got)
	}
}

func testIfMatch(t *testing.T, s store.Store) {
	ctx := context.Background()
	info := put(t, s, "p", []byte("v1"), store.PutOptions{})
	info2, err := s.Put(ctx, "p", strings.NewReader("v2"), 2, store.PutOptions{IfMatch: info.ETag})
	if err != nil {
		t.Fatalf("if-match with current etag: %v", err)
	}
	_, err = s.Put(ctx, "p", strings.NewReader("v3"), 2, store.PutOptions{IfMatch: info.ETag})
	if !errors.Is(err, store.ErrPreconditionFailed) {
		t.Fatalf("if-match with stale etag: err = %v, want ErrPreconditionFailed", err)
	}
	if got := get(t, s, "p", store.Range{}); string(got) != "v2" {
		t.Fatalf("stale if-match put changed data: %q", got)
	}
	_, err = s.Put(ctx, "missing", strings.NewReader("x"), 1, store.PutOptions{IfMatch: info2.ETag})
	if !errors.Is(err, store.ErrPreconditionFailed) && !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("if-match on missing key: err = %v, want precondition failed or not found", err)
	}
	if _, err := s.Stat(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("if-match on missing key created it: %v", err)
	}
}

func testRange(t *testing.T, s store.Store) {
	data := Random(t, 1000)
	put(t, s, "r", data, store.PutOptions{})
	for _, tc := range []struct {
		rng  store.Range
		want []byte
	}{
		{store.Range{Offset: 0, Length: 10}, data[:10]},
		{store.Range{Offset: 990, Length: 10}, data[990:]},
		{store.Range{Offset: 500}, data[500:]},
		{store.Range{Offset: 100, Length: 1}, data[100:101]},
	} {
		if got := get(t, s, "r", tc.rng); !bytes.Equal(got, tc.want) {
			t.Errorf("range %+v: got %d bytes, want %d", tc.rng, len(got), len(tc.want))
		}
	}
}

func testList(t *testing.T, s store.Store) {
	keys := []string{"x/1", "x/2/a", "x/2/b", "y/1", "x-other"}
	for _, k := range keys {
		put(t, s, k, []byte(k), store.PutOptions{})
	}
	got, err := s.List(context.Background(), "x/")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, i := range got {
		names = append(names, i.Key)
		if i.Size != int64(len(i.Key)) {
			t.Errorf("list %s: size %d, want %d", i.Key, i.Size, len(i.Key))
		}
	}
	if strings.Join(names, ",") != "x/1,x/2/a,x/2/b" {
		t.Fatalf("list x/ = %v", names)
	}
	empty, err := s.List(context.Background(), "nothing/")
	if err != nil || len(empty) != 0 {
		t.Fatalf("list of empty prefix = %v, %v", empty, err)
	}
}

func testDelete(t *testing.T, s store.Store) {
	ctx := context.Background()
	put(t, s, "d/1", []byte("x"), store.PutOptions{})
	if err := s.Delete(ctx, "d/1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, "d/1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("stat after delete: %v", err)
	}
	if err := s.Delete(ctx, "d/1"); err != nil {
		t.Fatalf("delete of missing key: %v", err)
	}
	// A create-only put succeeds again after delete.
	put(t, s, "d/1", []byte("y"), store.PutOptions{IfNoneMatch: true})
}

func testNotFound(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, _, err := s.Get(ctx, "nope", store.Range{}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
	if _, err := s.Stat(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("stat missing: %v", err)
	}
	if errors.Is(store.ErrNotFound, store.ErrUnavailable) {
		t.Fatal("kinds must differ")
	}
}

func testConcurrentCreate(t *testing.T, s store.Store) {
	const n = 10
	var wg sync.WaitGroup
	wins := make(chan []byte, n)
	for i := 0; i < n; i++ {
		data := Random(t, 1024)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Put(context.Background(), "race", bytes.NewReader(data), int64(len(data)), store.PutOptions{IfNoneMatch: true})
			switch {
			case err == nil:
				wins <- data
			case errors.Is(err, store.ErrPreconditionFailed):
			default:
				t.Errorf("concurrent create: unexpected error %v", err)
			}
		}()
	}
	wg.Wait()
	close(wins)
	var winners [][]byte
	for w := range wins {
		winners = append(winners, w)
	}
	if len(winners) != 1 {
		t.Fatalf("%d winners, want exactly 1", len(winners))
	}
	if got := get(t, s, "race", store.Range{}); !bytes.Equal(got, winners[0]) {
		t.Fatal("stored bytes are not the winner's")
	}
}

func testUnknownSize(t *testing.T, s store.Store) {
	data := Random(t, 3000)
	info, err := s.Put(context.Background(), "u", io.MultiReader(bytes.NewReader(data)), -1, store.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(len(data)) {
		t.Fatalf("size = %d, want %d", info.Size, len(data))
	}
	if got := get(t, s, "u", store.Range{}); !bytes.Equal(got, data) {
		t.Fatal("bytes differ")
	}
}

type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("disk on fire")
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	for i := range p {
		p[i] = 'x'
	}
	f.n -= len(p)
	return len(p), nil
}

func testFailedPut(t *testing.T, s store.Store) {
	_, err := s.Put(context.Background(), "f", &failingReader{n: 100}, 1000, store.PutOptions{IfNoneMatch: true})
	if err == nil {
		t.Fatal("put from a failing reader succeeded")
	}
	if _, err := s.Stat(context.Background(), "f"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("failed put left an object: %v", err)
	}
	// A short reader (fewer bytes than size) must fail too.
	_, err = s.Put(context.Background(), "g", strings.NewReader("abc"), 10, store.PutOptions{})
	if err == nil {
		t.Fatal("put with fewer bytes than size succeeded")
	}
	if _, err := s.Stat(context.Background(), "g"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("short put left an object: %v", err)
	}
}
