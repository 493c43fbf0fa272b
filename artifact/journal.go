package artifact

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// UploadJournal remembers data uploads that were started and not finished,
// so that a later stage can abort exactly those, for example after a region
// died in the middle of a multipart upload and could not be told to abort.
// Aborting by key rather than by prefix never touches another stager's
// upload. Uploads left by other machines are the bucket lifecycle rule's job.
type UploadJournal interface {
	// Add records e, replacing an entry for the same store and key.
	Add(ctx context.Context, e JournalEntry) error
	Remove(ctx context.Context, e JournalEntry) error
	// Stale returns entries of the region and store whose upload has ended
	// without finishing, or whose process has ended.
	Stale(ctx context.Context, region, store string) ([]JournalEntry, error)
}

// JournalEntry is one started upload.
type JournalEntry struct {
	Region  string    `json:"region"`
	Store   string    `json:"store"` // store.String(); regions may share bucket names
	Key     string    `json:"key"`
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	// Ended: the upload failed; the process may live on, the upload does not.
	Ended bool `json:"ended,omitempty"`
}

func (e JournalEntry) same(o JournalEntry) bool {
	return e.Region == o.Region && e.Store == o.Store && e.Key == o.Key
}

// FileJournal keeps the journal in a JSON file, locked while it changes so
// that several berth processes on one machine can share it.
type FileJournal struct {
	Path string
}

func (j FileJournal) update(fn func([]JournalEntry) []JournalEntry) ([]JournalEntry, error) {
	if err := os.MkdirAll(filepath.Dir(j.Path), 0o700); err != nil {
		return nil, fmt.Errorf("create journal directory: %w", err)
	}
	lock, err := os.OpenFile(j.Path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open journal lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, fmt.Errorf("lock journal: %w", err)
	}
	var entries []JournalEntry
	data, err := os.ReadFile(j.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read journal: %w", err)
	default:
		if err := json.Unmarshal(data, &entries); err != nil {
			entries = nil // a damaged journal only costs the cleanup it held
		}
	}
	if fn == nil {
		return entries, nil
	}
	entries = fn(entries)
	data, _ = json.MarshalIndent(entries, "", "  ")
	tmp := j.Path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return nil, fmt.Errorf("write journal: %w", err)
	}
	if err := os.Rename(tmp, j.Path); err != nil {
		return nil, fmt.Errorf("write journal: %w", err)
	}
	return entries, nil
}

func (j FileJournal) Add(ctx context.Context, e JournalEntry) error {
	_, err := j.update(func(es []JournalEntry) []JournalEntry { return append(without(es, e), e) })
	return err
}

func (j FileJournal) Remove(ctx context.Context, e JournalEntry) error {
	_, err := j.update(func(es []JournalEntry) []JournalEntry { return without(es, e) })
	return err
}

func (j FileJournal) Stale(ctx context.Context, region, store string) ([]JournalEntry, error) {
	es, err := j.update(nil)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	var out []JournalEntry
	for _, e := range es {
		if e.Region == region && e.Store == store && (e.Ended || !(e.Host == host && alive(e.PID))) {
			out = append(out, e)
		}
	}
	return out, nil
}

// alive reports whether a process with pid runs on this machine.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func newEntry(region, store, key string) JournalEntry {
	host, _ := os.Hostname()
	return JournalEntry{Region: region, Store: store, Key: key, Host: host, PID: os.Getpid(), Started: time.Now().UTC()}
}

func without(es []JournalEntry, e JournalEntry) []JournalEntry {
	out := es[:0]
	for _, x := range es {
		if !x.same(e) {
			out = append(out, x)
		}
	}
	return out
}
