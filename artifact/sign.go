package artifact

// Signed releases.
//
// A checksum in a manifest proves only that the bytes match the manifest;
// whoever can write the store (or sit on a plain-http path to it) can
// replace both. A release signed by the stager's minisign (Ed25519) key and
// checked against keys the downloader trusts proves who published it.
//
// The signature lives inside the manifest, in its "signature" member, so the
// one create-only manifest write that commits a version commits its
// signature too: no version is ever visible with a signature missing or
// belonging to another write. The member holds a complete minisign
// signature (the four-line .minisig text), so the minisign tool can check it.
//
// What is signed: the canonical form of the manifest, which a verifier
// rebuilds from the stored bytes:
//
//  1. Decode the manifest as one JSON object into its members.
//  2. Drop the members named exactly "signature" and "object". The object
//     key says where the bytes are, not what they are (the signed size and
//     sha256 say that), and verify --repair re-homes lost bytes under a new
//     key in the region it repairs.
//  3. Write the remaining members sorted by name (byte order) as
//     {"name":value,...}: each name encoded as a JSON string by
//     encoding/json, each value as stored with insignificant whitespace
//     removed (json.Compact), nothing else between them.
//
// Every other member is covered, including ones this version of berth does
// not know, so fields a later format adds stay signed. A name given twice
// keeps its last value, as it does when encoding/json fills a Manifest; a
// member that differs from the signed ones only in case (which encoding/json
// would also accept) is a different name here and breaks the signature.
//
// The minisign trusted comment (signed too) is
// "berth manifest project=P version=V sha256=S" and must match the manifest,
// so a signature is bound to one project and version twice over.
//
// To check one by hand: write the canonical form to a file, the signature
// member's text to FILE.minisig, and run minisign -Vm FILE -p KEY.pub.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"aead.dev/minisign"
)

// ErrUntrusted: a version is unsigned, signed by a key that is not trusted,
// or its signature does not match its manifest.
var ErrUntrusted = errors.New("untrusted")

// Signature states of a manifest.
const (
	// SignatureUnsigned: the manifest carries no signature.
	SignatureUnsigned = "unsigned"
	// SignatureVerified: signed by a trusted key, and the signature matches.
	SignatureVerified = "verified"
	// SignatureUnchecked: signed, but no trusted key was given to check it.
	SignatureUnchecked = "signed"
	// SignatureUntrusted: signed by a key that is not among the trusted ones.
	SignatureUntrusted = "untrusted"
	// SignatureBad: the signature is malformed or does not match the manifest.
	SignatureBad = "bad"
)

// SignatureInfo describes the signature of one manifest.
type SignatureInfo struct {
	Status string `json:"status"`
	// KeyID is the key the signature names (16 hex digits, as minisign
	// prints them). Only a verified signature proves it.
	KeyID string `json:"key_id,omitempty"`
	Error string `json:"error,omitempty"`
}

const maxSignatureLen = 4 << 10

// KeyID formats a minisign key ID as minisign prints it.
func KeyID(id uint64) string { return fmt.Sprintf("%016X", id) }

// ParsePublicKey reads a minisign public key: the contents of a .pub file
// (an untrusted comment line and the key) or the key line alone.
func ParsePublicKey(text string) (minisign.PublicKey, error) {
	var k minisign.PublicKey
	s := strings.TrimSpace(text)
	if s == "" || len(s) > 1024 {
		return k, invalid("public key: expected a minisign public key such as RWQ... (the last line of a .pub file)")
	}
	if strings.Count(s, "\n") > 1 {
		return k, invalid("public key: expected at most two lines (an untrusted comment and the key)")
	}
	if err := k.UnmarshalText([]byte(s)); err != nil {
		return k, invalid("public key: %v", err)
	}
	return k, nil
}

// ParseSecretKey reads a minisign secret key file. An encrypted key is
// decrypted with password; that takes seconds and about 1 GiB of memory by
// design (minisign's scrypt parameters).
func ParseSecretKey(data []byte, password string) (minisign.PrivateKey, error) {
	if minisign.IsEncrypted(data) {
		if password == "" {
			return minisign.PrivateKey{}, invalid("secret key is password-protected and no password was given")
		}
		k, err := minisign.DecryptKey(password, data)
		if err != nil {
			return minisign.PrivateKey{}, invalid("decrypt secret key: wrong password or damaged key")
		}
		return k, nil
	}
	var k minisign.PrivateKey
	if err := k.UnmarshalText(bytes.TrimSpace(data)); err != nil {
		return k, invalid("secret key: %v", err)
	}
	return k, nil
}

func trustedComment(m *Manifest) string {
	return fmt.Sprintf("berth manifest project=%s version=%s sha256=%s", m.Project, m.Version, m.SHA256)
}

// canonicalManifest returns the signed form of a stored manifest (see the
// top of this file) and the text of its signature member, "" when absent.
func canonicalManifest(data []byte) (canon []byte, sig string, err error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil {
		return nil, "", fmt.Errorf("decode manifest: %v", err)
	}
	if raw, ok := members["signature"]; ok {
		if err := json.Unmarshal(raw, &sig); err != nil {
			return nil, "", errors.New("signature member is not a string")
		}
	}
	delete(members, "signature")
	delete(members, "object")
	names := make([]string, 0, len(members))
	for name := range members {
		names = append(names, name)
	}
	slices.Sort(names)
	var b bytes.Buffer
	b.WriteByte('{')
	for i, name := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		quoted, err := json.Marshal(name)
		if err != nil {
			return nil, "", err
		}
		b.Write(quoted)
		b.WriteByte(':')
		if err := json.Compact(&b, members[name]); err != nil {
			return nil, "", err
		}
	}
	b.WriteByte('}')
	return b.Bytes(), sig, nil
}

// signManifest sets m.Signature to key's signature of m and returns the
// key's ID. A nil key leaves the manifest unsigned.
func signManifest(m *Manifest, key *minisign.PrivateKey) (string, error) {
	if key == nil {
		return "", nil
	}
	m.Signature = ""
	data, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encode manifest: %w", err)
	}
	canon, _, err := canonicalManifest(data)
	if err != nil {
		return "", fmt.Errorf("sign manifest: %w", err)
	}
	// The prehashed variant (BLAKE2b-512, then Ed25519) is minisign's
	// default since 0.10; both variants verify the same way.
	r := minisign.NewReader(bytes.NewReader(canon))
	if _, err := io.Copy(io.Discard, r); err != nil {
		return "", fmt.Errorf("sign manifest: %w", err)
	}
	id := KeyID(key.ID())
	m.Signature = string(r.SignWithComments(*key, trustedComment(m), "berth manifest signature from key "+id))
	return id, nil
}

// checkSignature judges the signature of m, read from the stored bytes
// m.raw, against keys.
func checkSignature(m *Manifest, keys []minisign.PublicKey) SignatureInfo {
	raw := m.raw
	if raw == nil {
		// Built in memory rather than read: judge its encoding.
		raw, _ = json.Marshal(m)
	}
	canon, text, err := canonicalManifest(raw)
	if err != nil {
		return SignatureInfo{Status: SignatureBad, Error: err.Error()}
	}
	if text == "" {
		return SignatureInfo{Status: SignatureUnsigned}
	}
	if len(text) > maxSignatureLen {
		return SignatureInfo{Status: SignatureBad, Error: fmt.Sprintf("signature is %d bytes long, more than any minisign signature", len(text))}
	}
	var sig minisign.Signature
	if err := sig.UnmarshalText([]byte(text)); err != nil {
		return SignatureInfo{Status: SignatureBad, Error: "malformed signature: " + strings.TrimPrefix(err.Error(), "minisign: ")}
	}
	info := SignatureInfo{KeyID: KeyID(sig.KeyID)}
	if len(keys) == 0 {
		info.Status = SignatureUnchecked
		return info
	}
	i := slices.IndexFunc(keys, func(k minisign.PublicKey) bool { return k.ID() == sig.KeyID })
	if i < 0 {
		info.Status, info.Error = SignatureUntrusted, fmt.Sprintf("signed by key %s, which is not trusted (trusted: %s)", info.KeyID, keyIDs(keys))
		return info
	}
	switch {
	case !minisign.Verify(keys[i], canon, []byte(text)):
		info.Status, info.Error = SignatureBad, fmt.Sprintf("signature by key %s does not match the manifest: it was changed after signing", info.KeyID)
	case sig.TrustedComment != trustedComment(m):
		info.Status, info.Error = SignatureBad, fmt.Sprintf("signature by key %s is for %q, not for this manifest", info.KeyID, sig.TrustedComment)
	default:
		info.Status = SignatureVerified
	}
	return info
}

func keyIDs(keys []minisign.PublicKey) string {
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = KeyID(k.ID())
	}
	return strings.Join(ids, ", ")
}

// trust passes m when the client trusts no key (signatures are not
// required) or when m is signed by a trusted key, whose ID it returns;
// otherwise it returns an error of kind ErrUntrusted that says why.
func (c *Client) trust(m *Manifest) (string, error) {
	if len(c.TrustedKeys) == 0 {
		return "", nil
	}
	info := checkSignature(m, c.TrustedKeys)
	switch info.Status {
	case SignatureVerified:
		return info.KeyID, nil
	case SignatureUnsigned:
		return "", fmt.Errorf("%s %s is not signed, and only versions signed by a trusted key (%s) are accepted: %w", m.Project, m.Version, keyIDs(c.TrustedKeys), ErrUntrusted)
	}
	return "", fmt.Errorf("%s %s: %s: %w", m.Project, m.Version, info.Error, ErrUntrusted)
}

// refuseUnsigned stops a signed stage of a version that a region already
// holds without key's signature, before anything is uploaded: versions are
// immutable, so the signature could never be added, and reporting the
// region as present would pass an unsigned release off as signed. A copy
// this key signed (a re-run after a partial failure) is fine.
func refuseUnsigned(stages []*regionStage, project, version string, key *minisign.PrivateKey) error {
	if key == nil {
		return nil
	}
	pub, _ := key.Public().(minisign.PublicKey)
	for _, rs := range stages {
		if rs.existing == nil {
			continue
		}
		info := checkSignature(rs.existing, []minisign.PublicKey{pub})
		if info.Status == SignatureVerified {
			continue
		}
		state := "without a signature"
		if info.Status != SignatureUnsigned {
			state = "without a valid signature by key " + KeyID(key.ID())
		}
		return fmt.Errorf("%s %s is already staged in %s %s, and versions are immutable: stage a new version to sign it: %w",
			project, version, rs.region.Name, state, ErrConflict)
	}
	return nil
}
