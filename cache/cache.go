// Package cache saves and restores CI caches (GitHub actions/cache
// semantics) in berth's regions: a tree of paths packed as tar+zstd under
// an immutable key, restored by exact key or by the newest key starting
// with a prefix, from the first region that answers.
//
// Layout in each region's cache store:
//
//	keys/KEY.json            the entry: archive object, SHA-256, size, time (create-only)
//	data/KEY/SHA256.tar.zst  the archive
//
// The entry is written last and only if absent, so it is the commit point:
// of concurrent saves of one key exactly one entry is stored, and the
// losers delete their archives and succeed as no-ops.
package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/store"
)

// Error kinds callers test with errors.Is.
var (
	// ErrMiss: no entry matches the key or any restore prefix.
	ErrMiss = fmt.Errorf("cache miss: %w", errkind.NotFound)
	// ErrInvalid: a key or prefix berth does not accept.
	ErrInvalid = errkind.Invalid
	// ErrCorrupt: an archive does not match the SHA-256 its entry recorded.
	ErrCorrupt = errors.New("cache archive corrupt")
)

// MaxKeyLen caps a key; S3 keys stop at 1024 bytes and the layout adds
// the SHA-256 and a prefix.
const MaxKeyLen = 512

// maxEntrySize caps an entry object; berth writes about 300 bytes.
const maxEntrySize = 64 << 10

// Region is one region's cache store.
type Region struct {
	Name  string
	Store store.Store
}

// Client saves to every region and restores from the first that answers,
// in order (nearest first).
type Client struct {
	Regions []Region
	Logger  *slog.Logger // nil: quiet
	// TempDir holds the archive while it is packed or fetched ("" = os.TempDir).
	TempDir string
	// Now is the clock (nil: time.Now); tests set it.
	Now func() time.Time
}

// Entry is the committed record of a saved key.
type Entry struct {
	Key     string    `json:"key"`
	Object  string    `json:"object"`
	SHA256  string    `json:"sha256"`
	Size    int64     `json:"size"`
	SavedAt time.Time `json:"saved_at"`
	Format  string    `json:"format"` // "tar+zstd"
}

// ValidateKey checks a cache key: 1 to 512 characters from letters,
// digits and "._-+=,@:", starting with a letter or digit.
func ValidateKey(key string) error { return validate("key", key, false) }

// ValidatePrefix checks a restore prefix: a key's characters, not empty.
func ValidatePrefix(p string) error { return validate("restore key prefix", p, true) }

func validate(what, s string, prefix bool) error {
	if s == "" {
		return fmt.Errorf("%s is empty: %w", what, ErrInvalid)
	}
	if len(s) > MaxKeyLen {
		return fmt.Errorf("%s %.20q... is %d characters; the limit is %d: %w", what, s, len(s), MaxKeyLen, ErrInvalid)
	}
	for i, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			(i > 0 && strings.ContainsRune("._-+=,@:", r))
		if !ok {
			return fmt.Errorf("%s %q: character %q at position %d is not allowed; use letters, digits and \"._-+=,@:\", starting with a letter or digit: %w", what, s, r, i+1, ErrInvalid)
		}
	}
	return nil
}

func entryKey(key string) string { return "keys/" + key + ".json" }

// SaveResult says what Save did in one region.
type SaveResult struct {
	Region string
	Saved  bool // false: the key was already there (a no-op)
	Err    error
}

// Save packs paths (relative to dir) and stores them under key in every
// region where key is absent. A key already present is left as it is: not
// an error. It returns one result per region and an error joining the
// regions that failed.
func (c *Client) Save(ctx context.Context, key, dir string, paths []string) ([]SaveResult, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("save %s: name at least one path: %w", key, ErrInvalid)
	}
	results := make([]SaveResult, len(c.Regions))
	var todo []int
	for i, r := range c.Regions {
		results[i].Region = r.Name
		_, err := r.Store.Stat(ctx, entryKey(key))
		switch {
		case err == nil:
		case errors.Is(err, store.ErrNotFound):
			todo = append(todo, i)
		default:
			results[i].Err = err
		}
	}
	if len(todo) > 0 {
		f, sum, size, err := c.pack(dir, paths)
		if err != nil {
			return nil, fmt.Errorf("save %s: %w", key, err)
		}
		defer os.Remove(f.Name())
		defer f.Close()
		e := Entry{Key: key, Object: "data/" + key + "/" + sum + ".tar.zst", SHA256: sum, Size: size, SavedAt: c.now().UTC(), Format: "tar+zstd"}
		var wg sync.WaitGroup
		for _, i := range todo {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sr := io.NewSectionReader(f, 0, size)
				results[i].Saved, results[i].Err = c.saveRegion(ctx, c.Regions[i], e, sr)
			}()
		}
		wg.Wait()
	}
	var errs []error
	for _, r := range results {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("save %s in region %s: %w", key, r.Region, r.Err))
		}
	}
	return results, errors.Join(errs...)
}

func (c *Client) pack(dir string, paths []string) (*os.File, string, int64, error) {
	f, err := os.CreateTemp(c.TempDir, "berth-cache-*.tar.zst")
	if err != nil {
		return nil, "", 0, fmt.Errorf("create temporary file: %w", err)
	}
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	if err := Pack(cw, dir, paths); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, "", 0, err
	}
	return f, hex.EncodeToString(h.Sum(nil)), cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (c *Client) saveRegion(ctx context.Context, r Region, e Entry, body io.Reader) (bool, error) {
	_, err := r.Store.Put(ctx, e.Object, body, e.Size, store.PutOptions{IfNoneMatch: true, ContentType: "application/zstd"})
	if err != nil && !errors.Is(err, store.ErrPreconditionFailed) {
		return false, err
	}
	// An archive already at this name has these very bytes (the name is
	// their SHA-256): a retry of an interrupted save.
	doc, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return false, err
	}
	_, err = r.Store.Put(ctx, entryKey(e.Key), bytes.NewReader(doc), int64(len(doc)), store.PutOptions{IfNoneMatch: true, ContentType: "application/json"})
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrPreconditionFailed):
		// Another save of this key committed first: ours is a no-op.
		// Remove our archive unless the winner's entry names it.
		if won, rerr := readEntry(ctx, r.Store, e.Key); rerr == nil && won.Object != e.Object {
			if derr := r.Store.Delete(ctx, e.Object); derr != nil {
				c.log().Warn("cache: could not remove the archive of a lost save", "region", r.Name, "object", e.Object, "err", derr)
			}
		}
		return false, nil
	default:
		return false, err
	}
}

func readEntry(ctx context.Context, s store.Store, key string) (Entry, error) {
	rc, _, err := s.Get(ctx, entryKey(key), store.Range{})
	if err != nil {
		return Entry{}, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxEntrySize+1))
	if err != nil {
		return Entry{}, fmt.Errorf("read entry %s: %w", key, err)
	}
	var e Entry
	if len(b) > maxEntrySize || json.Unmarshal(b, &e) != nil || e.Key != key || len(e.SHA256) != 64 || e.Object != "data/"+key+"/"+e.SHA256+".tar.zst" || e.Size < 0 {
		return Entry{}, fmt.Errorf("entry %s in %s is not a berth cache entry: %w", key, s, ErrCorrupt)
	}
	return e, nil
}

// Restored says what Restore restored.
type Restored struct {
	Key    string // the key restored: the one asked for, or one a prefix matched
	Region string
	Size   int64
	Exact  bool
}

// Restore unpacks into dir the entry saved under key or, when there is
// none, the newest entry whose key starts with the first of prefixes that
// matches any. Regions are asked in order; one that fails or holds a
// corrupt archive is skipped with a warning. Nothing is unpacked before
// the archive's SHA-256 matches its entry. A miss is ErrMiss.
func (c *Client) Restore(ctx context.Context, key string, prefixes []string, dir string) (Restored, error) {
	if err := ValidateKey(key); err != nil {
		return Restored{}, err
	}
	for _, p := range prefixes {
		if err := ValidatePrefix(p); err != nil {
			return Restored{}, err
		}
	}
	var errs []error
	answered := false
	for _, r := range c.Regions {
		e, exact, err := c.lookup(ctx, r.Store, key, prefixes)
		if errors.Is(err, ErrMiss) {
			answered = true
			continue
		}
		if err == nil {
			err = c.fetchAndUnpack(ctx, r, e, dir)
			if err == nil {
				return Restored{Key: e.Key, Region: r.Name, Size: e.Size, Exact: exact}, nil
			}
			if errors.Is(err, ErrUnsafe) {
				return Restored{}, err // refused, not a region fault
			}
		}
		c.log().Warn("cache: region failed; trying the next", "region", r.Name, "err", err)
		errs = append(errs, fmt.Errorf("region %s: %w", r.Name, err))
	}
	if answered || len(errs) == 0 {
		return Restored{}, fmt.Errorf("restore %s: %w", key, ErrMiss)
	}
	return Restored{}, fmt.Errorf("restore %s: no region answered: %w", key, errors.Join(errs...))
}

// lookup finds the entry for key or the newest for the first matching
// prefix in one store.
func (c *Client) lookup(ctx context.Context, s store.Store, key string, prefixes []string) (Entry, bool, error) {
	e, err := readEntry(ctx, s, key)
	if err == nil {
		return e, true, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return Entry{}, false, err
	}
	for _, p := range prefixes {
		infos, err := s.List(ctx, "keys/"+p)
		if err != nil {
			return Entry{}, false, err
		}
		var cands []store.Info
		for _, in := range infos {
			if strings.HasSuffix(in.Key, ".json") {
				cands = append(cands, in)
			}
		}
		if len(cands) == 0 {
			continue
		}
		// Store times are coarse (S3: one second): read the entries of
		// the latest few seconds and choose by their own save time.
		sort.Slice(cands, func(i, j int) bool { return cands[i].Modified.After(cands[j].Modified) })
		var best Entry
		for _, in := range cands {
			if in.Modified.Before(cands[0].Modified.Add(-2 * time.Second)) {
				break
			}
			k := strings.TrimSuffix(strings.TrimPrefix(in.Key, "keys/"), ".json")
			e, err := readEntry(ctx, s, k)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return Entry{}, false, err
			}
			if best.Key == "" || e.SavedAt.After(best.SavedAt) || (e.SavedAt.Equal(best.SavedAt) && e.Key > best.Key) {
				best = e
			}
		}
		if best.Key != "" {
			return best, false, nil
		}
	}
	return Entry{}, false, ErrMiss
}

func (c *Client) fetchAndUnpack(ctx context.Context, r Region, e Entry, dir string) error {
	rc, _, err := r.Store.Get(ctx, e.Object, store.Range{})
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.CreateTemp(c.TempDir, "berth-cache-*.tar.zst")
	if err != nil {
		return fmt.Errorf("create temporary file: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(rc, e.Size+1))
	if err != nil {
		return fmt.Errorf("download %s: %w", e.Object, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != e.Size || got != e.SHA256 {
		return fmt.Errorf("archive %s: %d bytes with SHA-256 %s, entry says %d bytes with %s: %w", e.Object, n, got, e.Size, e.SHA256, ErrCorrupt)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := Unpack(f, dir); err != nil {
		return fmt.Errorf("restore %s into %s: %w", e.Key, dir, err)
	}
	return nil
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Client) log() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.New(slog.DiscardHandler)
}
