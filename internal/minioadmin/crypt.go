package minioadmin

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"github.com/secure-io/sio-go"
	"golang.org/x/crypto/argon2"
)

// The admin API encrypts secrets in request and response bodies with a key
// derived from the caller's secret key. A sealed body is
//
//	salt (32 bytes) | algorithm (1 byte) | nonce (8 bytes) | sio stream
//
// where the sio stream is the plaintext cut into 16 KiB fragments, each
// sealed with the AEAD (the sio-go library's format). The algorithm byte
// names the key derivation and the AEAD; MinIO accepts all three.
const (
	algArgon2idAESGCM   = 0x00
	algArgon2idChaCha20 = 0x01
	algPBKDF2AESGCM     = 0x02

	saltSize   = 32
	nonceSize  = 8
	headerSize = saltSize + 1 + nonceSize

	// The parameters MinIO uses; the server derives the same key from them.
	argon2Time    = 1
	argon2Memory  = 64 * 1024 // KiB
	argon2Threads = 4
	pbkdf2Rounds  = 8192
)

// errNotAuthentic says a sealed body did not decrypt: the wrong secret key,
// or a body that is not what the server would send.
var errNotAuthentic = errors.New("encrypted response does not decrypt with this secret key")

func deriveKey(alg byte, password string, salt []byte) ([]byte, sio.Algorithm, error) {
	switch alg {
	case algArgon2idAESGCM:
		return argon2.IDKey([]byte(password), salt, argon2Time, argon2Memory, argon2Threads, 32), sio.AES_256_GCM, nil
	case algArgon2idChaCha20:
		return argon2.IDKey([]byte(password), salt, argon2Time, argon2Memory, argon2Threads, 32), sio.ChaCha20Poly1305, nil
	case algPBKDF2AESGCM:
		key, err := pbkdf2.Key(sha256.New, password, salt, pbkdf2Rounds, 32)
		return key, sio.AES_256_GCM, err
	}
	return nil, "", fmt.Errorf("unknown encryption algorithm %#x", alg)
}

// seal encrypts data for the admin API with argon2id and AES-256-GCM, the
// default of MinIO's own client.
func seal(password string, data []byte) ([]byte, error) {
	header := make([]byte, headerSize)
	if _, err := rand.Read(header[:saltSize]); err != nil {
		return nil, err
	}
	header[saltSize] = algArgon2idAESGCM
	if _, err := rand.Read(header[saltSize+1:]); err != nil {
		return nil, err
	}
	return sealWith(password, header, data)
}

// sealWith encrypts data under header (salt, algorithm, nonce), which the
// caller has filled in.
func sealWith(password string, header, data []byte) ([]byte, error) {
	key, alg, err := deriveKey(header[saltSize], password, header[:saltSize])
	if err != nil {
		return nil, err
	}
	stream, err := alg.Stream(key)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Write(header)
	w := stream.EncryptWriter(&buf, header[saltSize+1:], nil)
	if _, err := w.Write(data); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// open decrypts a body sealed by the admin API.
func open(password string, sealed []byte) ([]byte, error) {
	if len(sealed) < headerSize {
		return nil, fmt.Errorf("encrypted body of %d bytes is shorter than its %d-byte header", len(sealed), headerSize)
	}
	key, alg, err := deriveKey(sealed[saltSize], password, sealed[:saltSize])
	if err != nil {
		return nil, err
	}
	stream, err := alg.Stream(key)
	if err != nil {
		return nil, err
	}
	r := stream.DecryptReader(bytes.NewReader(sealed[headerSize:]), sealed[saltSize+1:headerSize], nil)
	data, err := io.ReadAll(r)
	if errors.Is(err, sio.NotAuthentic) {
		return nil, errNotAuthentic
	}
	return data, err
}
