package secrets_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/hub/secrets"
	"github.com/berth-dev/berth/internal/awsfake"
)

const testKeyARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"

// fakeKMS answers Encrypt and Decrypt as KMS documents them: an opaque
// ciphertext blob (here AES-GCM under a key only the fake knows, with the
// key ID and encryption context bound as associated data), and
// InvalidCiphertextException or IncorrectKeyException when they differ.
type fakeKMS struct {
	mu      sync.Mutex
	gcm     cipher.AEAD
	refuse  bool
	encrypt int
	decrypt int
}

func newFakeKMS(t *testing.T) (*fakeKMS, *kms.Client) {
	key := make([]byte, 32)
	rand.Read(key)
	block, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(block)
	f := &fakeKMS{gcm: gcm}
	s := awsfake.New(t)
	s.Handle("kms", "Encrypt", f.handleEncrypt)
	s.Handle("kms", "Decrypt", f.handleDecrypt)
	client := kms.New(kms.Options{
		Region:       "eu-west-1",
		BaseEndpoint: aws.String(s.URL),
		Credentials:  aws.NewCredentialsCache(credentials{}),
		HTTPClient:   http.DefaultClient,
	})
	return f, client
}

type credentials struct{}

func (credentials) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: awsfake.AccessKeyID, SecretAccessKey: awsfake.SecretAccessKey}, nil
}

func aadOf(r *awsfake.Request, keyID string) []byte {
	ctx, _ := r.JSON["EncryptionContext"].(map[string]any)
	var b strings.Builder
	b.WriteString(keyID)
	for _, k := range []string{"berth"} { // the only key berth sends
		v, _ := ctx[k].(string)
		b.WriteString("|" + k + "=" + v)
	}
	if len(ctx) != 1 {
		b.WriteString("|extra")
	}
	return []byte(b.String())
}

func (f *fakeKMS) handleEncrypt(r *awsfake.Request) awsfake.Response {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.encrypt++
	if f.refuse {
		return awsfake.JSONError(400, "AccessDeniedException", "User is not authorized to perform: kms:Encrypt")
	}
	keyID, _ := r.JSON["KeyId"].(string)
	plain, err := base64.StdEncoding.DecodeString(r.JSON["Plaintext"].(string))
	if err != nil || keyID != testKeyARN {
		return awsfake.JSONError(400, "NotFoundException", "key not found")
	}
	nonce := make([]byte, f.gcm.NonceSize())
	rand.Read(nonce)
	blob := f.gcm.Seal(nonce, nonce, plain, aadOf(r, keyID))
	return awsfake.JSON(map[string]any{"CiphertextBlob": blob, "KeyId": keyID, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"})
}

func (f *fakeKMS) handleDecrypt(r *awsfake.Request) awsfake.Response {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.decrypt++
	if f.refuse {
		return awsfake.JSONError(400, "AccessDeniedException", "User is not authorized to perform: kms:Decrypt")
	}
	keyID, _ := r.JSON["KeyId"].(string)
	if keyID != testKeyARN {
		return awsfake.JSONError(400, "IncorrectKeyException", "The key ID in the request does not identify a CMK that can perform this operation.")
	}
	blob, _ := base64.StdEncoding.DecodeString(r.JSON["CiphertextBlob"].(string))
	n := f.gcm.NonceSize()
	if len(blob) < n {
		return awsfake.JSONError(400, "InvalidCiphertextException", "")
	}
	plain, err := f.gcm.Open(nil, blob[:n], blob[n:], aadOf(r, keyID))
	if err != nil {
		return awsfake.JSONError(400, "InvalidCiphertextException", "")
	}
	return awsfake.JSON(map[string]any{"Plaintext": plain, "KeyId": keyID, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"})
}

func TestKMSKEK(t *testing.T) {
	ctx := context.Background()
	f, client := newFakeKMS(t)
	kek, err := secrets.NewKMSKEK(client, testKeyARN)
	if err != nil {
		t.Fatal(err)
	}
	box := &secrets.Box{KEKs: []secrets.KEK{kek}}
	const secret = "minio-admin-secret-0f3a"
	sealed, err := box.Seal(ctx, []byte(secret), "dataplane/3/secret_key")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, secret) || !strings.Contains(sealed, ":"+kek.ID()+":") {
		t.Fatalf("sealed text %q: want the secret hidden and the KMS key's id named", sealed)
	}
	got, err := box.Open(ctx, sealed, "dataplane/3/secret_key")
	if err != nil || !bytes.Equal(got, []byte(secret)) {
		t.Fatalf("open = %q, %v", got, err)
	}
	if f.encrypt != 1 || f.decrypt != 1 {
		t.Errorf("kms calls: %d Encrypt, %d Decrypt; want 1 each", f.encrypt, f.decrypt)
	}

	// Another KMS key cannot stand in: KMS is asked with the key named.
	other, _ := secrets.NewKMSKEK(client, strings.Replace(testKeyARN, "1234abcd", "99999999", 1))
	if other.ID() == kek.ID() {
		t.Fatal("two KMS keys share an id")
	}

	// Refused access is the operator's to fix, and the secret stays closed.
	f.refuse = true
	_, err = box.Open(ctx, sealed, "dataplane/3/secret_key")
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("open with access refused: %v", err)
	}
	if _, err := box.Seal(ctx, []byte(secret), "x"); !errors.Is(err, errkind.PermissionDenied) {
		t.Errorf("seal with access refused: %v, want PermissionDenied", err)
	}
}

// TestKMSRotateFromFile: a hub that started with a key file moves to KMS by
// rewrapping; the secrets then open with KMS alone.
func TestKMSRotateFromFile(t *testing.T) {
	ctx := context.Background()
	fileBox, _ := newBox(t)
	sealed, err := fileBox.Seal(ctx, []byte("external-id-1"), "dataplane/1/external_id")
	if err != nil {
		t.Fatal(err)
	}
	_, client := newFakeKMS(t)
	kek, _ := secrets.NewKMSKEK(client, testKeyARN)
	both := &secrets.Box{KEKs: append([]secrets.KEK{kek}, fileBox.KEKs...)}
	moved, err := both.Rewrap(ctx, sealed)
	if err != nil {
		t.Fatal(err)
	}
	kmsOnly := &secrets.Box{KEKs: []secrets.KEK{kek}}
	if got, err := kmsOnly.Open(ctx, moved, "dataplane/1/external_id"); err != nil || string(got) != "external-id-1" {
		t.Fatalf("open after moving to KMS = %q, %v", got, err)
	}
	if _, err := kmsOnly.Open(ctx, sealed, "dataplane/1/external_id"); err == nil {
		t.Error("the file-sealed secret opened without the file key")
	}
}

func TestNewKMSKEKInvalid(t *testing.T) {
	for _, id := range []string{"", "arn:aws:kms:eu-west-1:1:key/a b"} {
		if _, err := secrets.NewKMSKEK(nil, id); !errors.Is(err, errkind.Invalid) {
			t.Errorf("NewKMSKEK(%q) = %v, want Invalid", id, err)
		}
	}
}
