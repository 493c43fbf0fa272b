package secrets_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/hub/secrets"
)

func newBox(t *testing.T) (*secrets.Box, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kek")
	k, err := secrets.LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return &secrets.Box{KEKs: []secrets.KEK{k}}, path
}

func TestSealOpen(t *testing.T) {
	ctx := context.Background()
	box, _ := newBox(t)
	const secret = "ext-id-7d1f-very-secret"
	sealed, err := box.Seal(ctx, []byte(secret), "dataplane/1/external_id")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, secret) || !secrets.IsSealed(sealed) {
		t.Fatalf("sealed text %q", sealed)
	}
	again, _ := box.Seal(ctx, []byte(secret), "dataplane/1/external_id")
	if again == sealed {
		t.Error("two seals of one secret are equal: data keys or nonces repeat")
	}
	got, err := box.Open(ctx, sealed, "dataplane/1/external_id")
	if err != nil || string(got) != secret {
		t.Fatalf("Open = %q, %v", got, err)
	}

	bad := []struct{ name, sealed, aad string }{
		{"other row", sealed, "dataplane/2/external_id"},
		{"tampered ciphertext", sealed[:len(sealed)-2] + flip(sealed[len(sealed)-2:]), "dataplane/1/external_id"},
		{"clear text", secret, "dataplane/1/external_id"},
		{"missing field", strings.Join(strings.Split(sealed, ":")[:4], ":"), "dataplane/1/external_id"},
		{"unknown key", strings.Replace(sealed, ":file-", ":file-0", 1), "dataplane/1/external_id"},
	}
	for _, tt := range bad {
		if _, err := box.Open(ctx, tt.sealed, tt.aad); !errors.Is(err, secrets.ErrCannotOpen) || !errors.Is(err, errkind.Invalid) {
			t.Errorf("%s: Open = %v, want ErrCannotOpen", tt.name, err)
		} else if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the error shows the secret: %v", tt.name, err)
		}
	}
}

func flip(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

func TestRotate(t *testing.T) {
	ctx := context.Background()
	old, _ := newBox(t)
	sealed, err := old.Seal(ctx, []byte("admin-secret"), "dataplane/3/admin_secret_key")
	if err != nil {
		t.Fatal(err)
	}
	newKEK, err := secrets.NewKeyFile(filepath.Join(t.TempDir(), "kek2"))
	if err != nil {
		t.Fatal(err)
	}
	both := &secrets.Box{KEKs: []secrets.KEK{newKEK, old.KEKs[0]}}
	rewrapped, err := both.Rewrap(ctx, sealed)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rewrapped, newKEK.ID()) || rewrapped == sealed {
		t.Fatalf("rewrapped %q is not under the new key %s", rewrapped, newKEK.ID())
	}
	onlyNew := &secrets.Box{KEKs: []secrets.KEK{newKEK}}
	if got, err := onlyNew.Open(ctx, rewrapped, "dataplane/3/admin_secret_key"); err != nil || string(got) != "admin-secret" {
		t.Fatalf("open after rotation = %q, %v", got, err)
	}
	if _, err := onlyNew.Open(ctx, sealed, "dataplane/3/admin_secret_key"); !errors.Is(err, secrets.ErrCannotOpen) {
		t.Errorf("the old sealed text opened without the old key: %v", err)
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kek")
	a, err := secrets.LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v", fi.Mode(), err)
	}
	b, err := secrets.LoadOrCreateKeyFile(path)
	if err != nil || b.ID() != a.ID() {
		t.Fatalf("reload gave key %v (%v), want %s", b, err, a.ID())
	}
	if _, err := secrets.NewKeyFile(path); !errors.Is(err, errkind.Conflict) {
		t.Errorf("NewKeyFile over an existing key = %v, want a conflict", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := secrets.LoadKeyFile(path); !errors.Is(err, errkind.Invalid) || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable key file = %v, want a refusal naming chmod 600", err)
	}
	junk := filepath.Join(dir, "junk")
	os.WriteFile(junk, []byte("hello"), 0o600)
	if _, err := secrets.LoadKeyFile(junk); !errors.Is(err, errkind.Invalid) {
		t.Errorf("junk key file = %v", err)
	}
}

func FuzzOpen(f *testing.F) {
	box := &secrets.Box{}
	k, err := secrets.LoadOrCreateKeyFile(filepath.Join(f.TempDir(), "kek"))
	if err != nil {
		f.Fatal(err)
	}
	box.KEKs = []secrets.KEK{k}
	sealed, _ := box.Seal(context.Background(), []byte("x"), "a")
	f.Add(sealed)
	f.Add("berth-sealed:v1:::")
	f.Add("berth-sealed:v1:" + k.ID() + ":AA:AA")
	f.Fuzz(func(t *testing.T, s string) {
		pt, err := box.Open(context.Background(), s, "a")
		if err == nil && (s != sealed || string(pt) != "x") && !strings.HasPrefix(s, "berth-sealed:v1:"+k.ID()+":") {
			t.Fatalf("opened %q", s)
		}
		if err != nil && !errors.Is(err, secrets.ErrCannotOpen) {
			t.Fatalf("Open(%q) = %v, not ErrCannotOpen", s, err)
		}
	})
}
