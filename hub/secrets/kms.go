package secrets

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/berth-dev/berth/errkind"
)

// KMSAPI is the part of the KMS client a KMSKEK calls.
type KMSAPI interface {
	Encrypt(ctx context.Context, in *kms.EncryptInput, opts ...func(*kms.Options)) (*kms.EncryptOutput, error)
	Decrypt(ctx context.Context, in *kms.DecryptInput, opts ...func(*kms.Options)) (*kms.DecryptOutput, error)
}

// KMSKEK is a key-encryption key held by AWS KMS: data keys are wrapped by
// KMS Encrypt and unwrapped by Decrypt, so the KEK never leaves KMS and
// every unwrap is in CloudTrail.
type KMSKEK struct {
	client KMSAPI
	keyID  string
	id     string
}

// kmsContext binds wrapped data keys to berth's hub: KMS refuses to decrypt
// them without it, and it shows in CloudTrail.
var kmsContext = map[string]string{"berth": "hub data key"}

// NewKMSKEK uses the KMS key keyID (an ARN, key ID or alias ARN). A full
// ARN is best: it names the key's region and account in sealed secrets.
func NewKMSKEK(client KMSAPI, keyID string) (*KMSKEK, error) {
	if keyID == "" || strings.ContainsAny(keyID, " \t\r\n") {
		return nil, fmt.Errorf("kms key %q: give a key ARN such as arn:aws:kms:eu-west-1:123456789012:key/1234abcd-...: %w", keyID, errkind.Invalid)
	}
	// The ID in sealed secrets is a hash of the key name, not the name
	// itself, to keep sealed text short and uniform with file keys.
	sum := sha256.Sum256([]byte("berth-kms-kek:" + keyID))
	return &KMSKEK{client: client, keyID: keyID, id: "kms-" + hex.EncodeToString(sum[:6])}, nil
}

// ID names the key.
func (k *KMSKEK) ID() string { return k.id }

// Wrap encrypts a data key with KMS.
func (k *KMSKEK) Wrap(ctx context.Context, dataKey []byte) ([]byte, error) {
	out, err := k.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(k.keyID), Plaintext: dataKey, EncryptionContext: kmsContext})
	if err != nil {
		return nil, fmt.Errorf("wrap data key with kms key %s: %w", k.keyID, kmsKind(err))
	}
	if len(out.CiphertextBlob) == 0 {
		return nil, fmt.Errorf("wrap data key with kms key %s: empty ciphertext: %w", k.keyID, errkind.Unavailable)
	}
	return out.CiphertextBlob, nil
}

// Unwrap decrypts a data key with KMS. The key is named so that KMS refuses
// a ciphertext wrapped under another key instead of quietly using it.
func (k *KMSKEK) Unwrap(ctx context.Context, wrapped []byte) ([]byte, error) {
	out, err := k.client.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(k.keyID), CiphertextBlob: wrapped, EncryptionContext: kmsContext})
	if err != nil {
		return nil, fmt.Errorf("unwrap data key with kms key %s: %w", k.keyID, kmsKind(err))
	}
	if len(out.Plaintext) != 32 {
		return nil, fmt.Errorf("unwrap data key with kms key %s: got %d bytes, want 32: %w", k.keyID, len(out.Plaintext), errkind.Invalid)
	}
	return out.Plaintext, nil
}

// kmsKind sorts KMS errors: refused access and disabled or missing keys
// are the operator's to fix; the rest may pass.
func kmsKind(err error) error {
	var api interface{ ErrorCode() string }
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "AccessDeniedException", "UnrecognizedClientException", "ExpiredTokenException":
			return fmt.Errorf("%w: %w", err, errkind.PermissionDenied)
		case "NotFoundException", "DisabledException", "KMSInvalidStateException", "InvalidCiphertextException", "IncorrectKeyException", "InvalidKeyUsageException":
			return fmt.Errorf("%w: %w", err, errkind.Invalid)
		}
	}
	return fmt.Errorf("%w: %w", err, errkind.Unavailable)
}
