package pointer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/berth-dev/berth/store"
)

// InStore keeps the pointers as objects in the artifact store,
// PROJECT/latest.json and PROJECT/prerelease/latest.json, moved with a
// replace-if-unchanged write so concurrent stagers never move them backwards.
type InStore struct {
	Store store.Store
}

type storedPointer struct {
	Version string    `json:"version"`
	Updated time.Time `json:"updated"`
}

func key(project, name string) (string, error) {
	p, err := path(name)
	if err != nil {
		return "", err
	}
	return project + "/" + p + ".json", nil
}

func (p InStore) String() string { return p.Store.String() + " (latest.json)" }

func (p InStore) read(ctx context.Context, project, name string) (string, string, error) {
	key, err := key(project, name)
	if err != nil {
		return "", "", err
	}
	rc, info, err := p.Store.Get(ctx, key, store.Range{})
	if err != nil {
		return "", "", err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, 64*1024))
	if err != nil {
		return "", "", fmt.Errorf("read %s pointer of %s in %s: %w", name, project, p.Store, err)
	}
	var sp storedPointer
	if err := json.Unmarshal(data, &sp); err != nil || sp.Version == "" {
		return "", info.ETag, fmt.Errorf("read %s pointer of %s in %s: malformed %s: %w", name, project, p.Store, key, store.ErrInvalid)
	}
	return sp.Version, info.ETag, nil
}

func (p InStore) Get(ctx context.Context, project, name string) (string, error) {
	v, _, err := p.read(ctx, project, name)
	return v, err
}

func (p InStore) Advance(ctx context.Context, project, name, version string, cmp func(a, b string) int, force bool) (bool, string, error) {
	key, err := key(project, name)
	if err != nil {
		return false, "", err
	}
	for range maxAttempts {
		current, etag, err := p.read(ctx, project, name)
		if err != nil && !errors.Is(err, store.ErrNotFound) && !(errors.Is(err, store.ErrInvalid) && etag != "") {
			return false, "", err
		}
		if current == version || (current != "" && !force && cmp(version, current) <= 0) {
			return false, current, nil
		}
		data, _ := json.Marshal(storedPointer{Version: version, Updated: time.Now().UTC()})
		opts := store.PutOptions{IfMatch: etag, ContentType: "application/json"}
		if etag == "" {
			opts = store.PutOptions{IfNoneMatch: true, ContentType: "application/json"}
		}
		_, err = p.Store.Put(ctx, key, bytes.NewReader(data), int64(len(data)), opts)
		if errors.Is(err, store.ErrPreconditionFailed) || errors.Is(err, store.ErrNotFound) {
			continue // someone else moved it; look again
		}
		if err != nil {
			return false, current, fmt.Errorf("move %s pointer of %s to %s: %w", name, project, version, err)
		}
		return true, current, nil
	}
	return false, "", fmt.Errorf("move %s pointer of %s to %s: too much contention after %d attempts: %w", name, project, version, maxAttempts, store.ErrUnavailable)
}
