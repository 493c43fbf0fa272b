// Package minisigntest makes minisign keys for tests.
package minisigntest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"testing"

	"aead.dev/minisign"
	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/scrypt"
)

// CheapEncryptedKey encrypts key in minisign's format, as
// minisign.EncryptKey does, but at the lowest scrypt cost instead of 1 GiB,
// so the test takes milliseconds; the cost is stored in the key.
func CheapEncryptedKey(t testing.TB, password string, key minisign.PrivateKey) []byte {
	t.Helper()
	plain, _ := key.MarshalText()
	raw, err := base64.StdEncoding.DecodeString(strings.SplitN(string(plain), "\n", 2)[1])
	if err != nil || len(raw) != 158 {
		t.Fatalf("unexpected unencrypted key layout: %v", err)
	}
	const ops, mem = 1 << 15, 1 << 20 // scrypt N=1024, r=8, p=1
	var salt [32]byte
	rand.Read(salt[:])
	secret := raw[54:126] // key ID and Ed25519 key
	sum := blake2b.Sum256(append([]byte{0x45, 0x64}, secret...))
	stream, err := scrypt.Key([]byte(password), salt[:], 1024, 8, 1, 104)
	if err != nil {
		t.Fatal(err)
	}
	ct := append(append([]byte{}, secret...), sum[:]...)
	for i := range ct {
		ct[i] ^= stream[i]
	}
	out := make([]byte, 158)
	copy(out, raw[:6])
	binary.LittleEndian.PutUint16(out[2:], 0x6353) // "Sc": scrypt
	copy(out[6:], salt[:])
	binary.LittleEndian.PutUint64(out[38:], ops)
	binary.LittleEndian.PutUint64(out[46:], mem)
	copy(out[54:], ct)
	enc := []byte("untrusted comment: minisign encrypted secret key\n" + base64.StdEncoding.EncodeToString(out) + "\n")
	if !minisign.IsEncrypted(enc) {
		t.Fatal("cheap key is not recognised as encrypted")
	}
	return enc
}
