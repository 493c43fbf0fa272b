package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/berth-dev/berth/store"
)

// fetch writes the data object of m from region r into f, starting at the
// beginning of f, and returns how many bytes it wrote and their SHA-256.
// The caller compares both with the manifest.
func (c *Client) fetch(ctx context.Context, r Region, m Manifest, f *os.File) (int64, string, error) {
	rc, info, err := r.Store.Get(ctx, m.Object, store.Range{})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			// The manifest exists, so the version does: its bytes are lost here.
			return 0, "", fmt.Errorf("data object %s is missing: %w", m.Object, ErrCorrupt)
		}
		return 0, "", err
	}
	defer rc.Close()
	if info.Size != m.Size {
		return 0, "", fmt.Errorf("data object is %d bytes, manifest says %d: %w", info.Size, m.Size, ErrCorrupt)
	}
	bar := c.bar(r.Name, m.Size)
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h, barWriter{bar}), ctxReader{ctx, rc})
	if err != nil {
		err = fmt.Errorf("transfer: %w", err)
	}
	bar.Done(err)
	if err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

type barWriter struct{ bar ProgressBar }

func (b barWriter) Write(p []byte) (int, error) { b.bar.Add(len(p)); return len(p), nil }
