package secrets

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/berth-dev/berth/errkind"
)

// FileKEK is a key-encryption key kept in a local file (mode 0600), for a
// hub without a KMS.
type FileKEK struct {
	id  string
	key []byte
}

const keyFilePrefix = "berth-kek:v1:"

// LoadOrCreateKeyFile reads the key in path, creating it with a new random
// key (mode 0600, create-only) when it does not exist. A key file that
// others may read is refused: anyone who reads it reads every secret.
func LoadOrCreateKeyFile(path string) (*FileKEK, error) {
	k, err := LoadKeyFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("create key file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return LoadKeyFile(path) // another replica created it first
	}
	if err != nil {
		return nil, fmt.Errorf("create key file: %w", err)
	}
	_, err = f.WriteString(keyFilePrefix + base64.StdEncoding.EncodeToString(key) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("create key file %s: %w", path, err)
	}
	return newFileKEK(key), nil
}

// NewKeyFile writes a new random key to path, which must not exist; for
// rotation.
func NewKeyFile(path string) (*FileKEK, error) {
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("create key file %s: it exists: %w", path, errkind.Conflict)
	}
	return LoadOrCreateKeyFile(path)
}

// LoadKeyFile reads the key in path.
func LoadKeyFile(path string) (*FileKEK, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key file %s has mode %v; others must not read it: run chmod 600 %s: %w", path, fi.Mode().Perm(), path, errkind.Invalid)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	text := strings.TrimSpace(string(data))
	if !strings.HasPrefix(text, keyFilePrefix) {
		return nil, fmt.Errorf("key file %s is not a berth key file (it should start with %q): %w", path, keyFilePrefix, errkind.Invalid)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(text, keyFilePrefix))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("key file %s does not hold a 256-bit key: %w", path, errkind.Invalid)
	}
	return newFileKEK(key), nil
}

// newFileKEK names the key by a hash of it, so sealed secrets say which key
// they need without revealing it.
func newFileKEK(key []byte) *FileKEK {
	sum := sha256.Sum256(append([]byte("berth-kek-id:"), key...))
	return &FileKEK{id: "file-" + hex.EncodeToString(sum[:6]), key: key}
}

// ID names the key.
func (k *FileKEK) ID() string { return k.id }

var dataKeyAAD = []byte("berth data key")

// Wrap encrypts a data key.
func (k *FileKEK) Wrap(_ context.Context, dataKey []byte) ([]byte, error) {
	gcm, err := newGCM(k.key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return gcm.Seal(nonce, nonce, dataKey, dataKeyAAD), nil
}

// Unwrap decrypts a data key.
func (k *FileKEK) Unwrap(_ context.Context, wrapped []byte) ([]byte, error) {
	gcm, err := newGCM(k.key)
	if err != nil {
		return nil, err
	}
	if len(wrapped) < gcm.NonceSize() {
		return nil, errors.New("wrapped key too short")
	}
	return gcm.Open(nil, wrapped[:gcm.NonceSize()], wrapped[gcm.NonceSize():], dataKeyAAD)
}
