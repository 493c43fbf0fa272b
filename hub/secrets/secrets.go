// Package secrets keeps the hub's stored secrets (external IDs, admin keys of
// S3-compatible data planes) encrypted at rest with envelope encryption:
// every secret has its own data key, and only the data key is encrypted with
// the key-encryption key (KEK). Rotating the KEK rewraps data keys without
// touching the secrets' ciphertext.
//
// A sealed secret is text, safe to store in any database column:
//
//	berth-sealed:v1:KEKID:WRAPPED-DATA-KEY:NONCE+CIPHERTEXT   (base64url fields)
//
// Each secret is sealed with associated data naming where it is stored (for
// example "dataplane/42/external_id"), so a ciphertext copied into another
// row does not open there.
package secrets

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/berth-dev/berth/errkind"
)

// ErrCannotOpen: a sealed secret does not open with the keys at hand (wrong
// key, tampered text, or sealed for another row).
var ErrCannotOpen = errkind.New("secret cannot be opened", errkind.Invalid)

const prefix = "berth-sealed:v1:"

// KEK wraps and unwraps data keys. A local key file and AWS KMS both fit.
type KEK interface {
	// ID names the key in sealed secrets, so that Open finds it after a
	// rotation.
	ID() string
	Wrap(ctx context.Context, dataKey []byte) ([]byte, error)
	Unwrap(ctx context.Context, wrapped []byte) ([]byte, error)
}

// Box seals with its first KEK and opens with any of them; the others are
// the keys it rotates away from.
type Box struct {
	KEKs []KEK
}

// Seal encrypts plaintext under a fresh data key, bound to aad.
func (b *Box) Seal(ctx context.Context, plaintext []byte, aad string) (string, error) {
	if len(b.KEKs) == 0 {
		return "", errors.New("seal secret: no key-encryption key")
	}
	dataKey := make([]byte, 32)
	if _, err := rand.Read(dataKey); err != nil {
		return "", fmt.Errorf("seal secret: %w", err)
	}
	gcm, err := newGCM(dataKey)
	if err != nil {
		return "", fmt.Errorf("seal secret: %w", err)
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal secret: %w", err)
	}
	ct := gcm.Seal(nonce, nonce, plaintext, []byte(aad))
	kek := b.KEKs[0]
	wrapped, err := kek.Wrap(ctx, dataKey)
	if err != nil {
		return "", fmt.Errorf("seal secret: wrap data key with %s: %w", kek.ID(), err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return prefix + kek.ID() + ":" + enc(wrapped) + ":" + enc(ct), nil
}

// Open decrypts a sealed secret bound to aad.
func (b *Box) Open(ctx context.Context, sealed, aad string) ([]byte, error) {
	kek, wrapped, ct, err := b.parse(sealed)
	if err != nil {
		return nil, err
	}
	dataKey, err := kek.Unwrap(ctx, wrapped)
	if err != nil {
		return nil, fmt.Errorf("open secret for %s: unwrap data key with %s: %w: %w", aad, kek.ID(), err, ErrCannotOpen)
	}
	gcm, err := newGCM(dataKey)
	if err != nil {
		return nil, fmt.Errorf("open secret for %s: %w: %w", aad, err, ErrCannotOpen)
	}
	if len(ct) < gcm.NonceSize() {
		return nil, fmt.Errorf("open secret for %s: ciphertext too short: %w", aad, ErrCannotOpen)
	}
	pt, err := gcm.Open(nil, ct[:gcm.NonceSize()], ct[gcm.NonceSize():], []byte(aad))
	if err != nil {
		// No detail: the message must not help an attacker tell cases apart.
		return nil, fmt.Errorf("open secret for %s: %w", aad, ErrCannotOpen)
	}
	return pt, nil
}

// Rewrap returns sealed with its data key wrapped by the first KEK, for
// rotation; the ciphertext of the secret itself is unchanged. A secret
// already under the first KEK is returned as is.
func (b *Box) Rewrap(ctx context.Context, sealed string) (string, error) {
	kek, wrapped, ct, err := b.parse(sealed)
	if err != nil {
		return "", err
	}
	current := b.KEKs[0]
	if kek.ID() == current.ID() {
		return sealed, nil
	}
	dataKey, err := kek.Unwrap(ctx, wrapped)
	if err != nil {
		return "", fmt.Errorf("rewrap secret: unwrap data key with %s: %w: %w", kek.ID(), err, ErrCannotOpen)
	}
	rewrapped, err := current.Wrap(ctx, dataKey)
	if err != nil {
		return "", fmt.Errorf("rewrap secret: wrap data key with %s: %w", current.ID(), err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return prefix + current.ID() + ":" + enc(rewrapped) + ":" + enc(ct), nil
}

// IsSealed tells whether s looks like a sealed secret, so that code storing
// secrets can refuse to store one in clear by mistake.
func IsSealed(s string) bool { return strings.HasPrefix(s, prefix) }

func (b *Box) parse(sealed string) (KEK, []byte, []byte, error) {
	if !IsSealed(sealed) {
		return nil, nil, nil, fmt.Errorf("open secret: not a sealed secret: %w", ErrCannotOpen)
	}
	parts := strings.Split(strings.TrimPrefix(sealed, prefix), ":")
	if len(parts) != 3 {
		return nil, nil, nil, fmt.Errorf("open secret: want 3 fields after %q, got %d: %w", prefix, len(parts), ErrCannotOpen)
	}
	var kek KEK
	for _, k := range b.KEKs {
		if k.ID() == parts[0] {
			kek = k
		}
	}
	if kek == nil {
		return nil, nil, nil, fmt.Errorf("open secret: sealed with key %q, which is not configured: %w", parts[0], ErrCannotOpen)
	}
	wrapped, err1 := base64.RawURLEncoding.DecodeString(parts[1])
	ct, err2 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil {
		return nil, nil, nil, fmt.Errorf("open secret: malformed base64: %w", ErrCannotOpen)
	}
	return kek, wrapped, ct, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
