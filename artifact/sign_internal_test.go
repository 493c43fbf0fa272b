package artifact

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"
)

// fixedKey is the same key on every run, so fuzz inputs found against a
// manifest it signed stay meaningful as seeds.
func fixedKey(t testing.TB) (minisign.PublicKey, minisign.PrivateKey) {
	pub, priv, err := minisign.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func signedManifest(t testing.TB) (Manifest, []byte) {
	_, priv := fixedKey(t)
	m := Manifest{
		Format: manifestFormat, Project: "app", Version: "1.0.0", Size: 5,
		SHA256:   "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
		Metadata: map[string]string{"commit": "abc", "note": "<b>&</b>"}, Filename: "app.tar.gz",
		Created: time.Date(2026, 12, 2, 17, 0, 0, 123e6, time.UTC), StagedBy: "ci@example",
	}
	if _, err := signManifest(&m, &priv); err != nil {
		t.Fatal(err)
	}
	m.Object = dataPrefix("app", "1.0.0") + "20261202T170000Z-0123456789abcdef01234567"
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return m, data
}

func TestCanonicalManifest(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"sorted, compact", `{ "b" : 1,
  "a": [1, 2] }`, `{"a":[1,2],"b":1}`},
		{"drops signature and object", `{"signature":"x","object":"k","size":1}`, `{"size":1}`},
		{"keeps other cases and unknown members", `{"Signature":"x","OBJECT":"k","future":{"z":1, "a":2}}`, `{"OBJECT":"k","Signature":"x","future":{"z":1,"a":2}}`},
		{"a repeated name keeps its last value", `{"size":1,"size":2}`, `{"size":2}`},
		{"string escapes stay as stored", `{"s":"\u003c\n"}`, `{"s":"\u003c\n"}`},
		{"names are re-encoded", `{"\u0073ize":1}`, `{"size":1}`},
	}
	for _, tc := range tests {
		got, _, err := canonicalManifest([]byte(tc.in))
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: canonical = %s, %v; want %s", tc.name, got, err, tc.want)
		}
	}
	for _, bad := range []string{``, `[]`, `{"signature":1}`, `{"a":`} {
		if _, _, err := canonicalManifest([]byte(bad)); err == nil {
			t.Errorf("canonical of %q: no error", bad)
		}
	}
}

// Re-encoding a signed manifest (other whitespace, member order) or moving
// its bytes (object) keeps it verified; changing any other member does not.
func TestSignatureCoversEveryMemberButObject(t *testing.T) {
	pub, _ := fixedKey(t)
	keys := []minisign.PublicKey{pub}
	_, data := signedManifest(t)
	check := func(data []byte) string {
		t.Helper()
		m, err := parseManifest(data, "app", "1.0.0")
		if err != nil {
			t.Fatal(err)
		}
		return checkSignature(&m, keys).Status
	}
	if got := check(data); got != SignatureVerified {
		t.Fatalf("stored manifest: %s", got)
	}
	var members map[string]json.RawMessage
	json.Unmarshal(data, &members)
	compact, _ := json.Marshal(members) // sorted, compact: another encoding
	if got := check(compact); got != SignatureVerified {
		t.Fatalf("re-encoded manifest: %s", got)
	}
	for name := range members {
		if name == "signature" {
			continue
		}
		edited := map[string]json.RawMessage{}
		for k, v := range members {
			edited[k] = v
		}
		switch name {
		case "object":
			edited[name] = json.RawMessage(`"app/1.0.0/data/moved"`)
		case "metadata":
			edited[name] = json.RawMessage(`{"commit":"abd","note":"<b>&</b>"}`)
		case "created":
			edited[name] = json.RawMessage(`"2026-12-02T17:00:00.124Z"`)
		case "project", "version", "format":
			continue // parseManifest refuses another project, version or format
		case "mode":
			edited[name] = json.RawMessage(`"0700"`)
			if string(members[name]) == `"0700"` {
				edited[name] = json.RawMessage(`"0600"`)
			}
		default:
			var v any
			json.Unmarshal(members[name], &v)
			switch v := v.(type) {
			case float64:
				edited[name] = json.RawMessage(`6`)
				if v == 6 {
					edited[name] = json.RawMessage(`2`)
				}
			case string:
				if name == "sha256" {
					edited[name] = json.RawMessage(`"` + strings.Repeat("0", 64) + `"`)
				} else {
					edited[name] = json.RawMessage(`"x` + v + `"`)
				}
			default:
				t.Fatalf("member %s: add a case for %T", name, v)
			}
		}
		out, _ := json.Marshal(edited)
		want := SignatureBad
		if name == "object" {
			want = SignatureVerified
		}
		if got := check(out); got != want {
			t.Errorf("%s changed: %s, want %s", name, got, want)
		}
	}
}

// FuzzCheckSignature holds the property the signature rests on: a stored
// manifest that verifies decodes to the manifest that was signed (its
// object aside). Ed25519 runs only for inputs with that
// form (it is slow under the fuzzer's instrumentation); every input goes
// through decoding and the signature parser, against a key that does not
// match.
func FuzzCheckSignature(f *testing.F) {
	pub, _ := fixedKey(f)
	other, _, err := minisign.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{8}, 32)))
	if err != nil {
		f.Fatal(err)
	}
	signed, data := signedManifest(f)
	signedCanon, _, err := canonicalManifest(data)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add(bytes.Replace(data, []byte(`"abc"`), []byte(`"abd"`), 1))
	f.Add(bytes.Replace(data, []byte(`"filename"`), []byte(`"Filename": "x", "filename"`), 1))
	f.Add(bytes.Replace(data, []byte(`"size": 5`), []byte(`"size": 6, "size": 5`), 1))
	f.Add(bytes.Replace(data, []byte(`"signature": "untrusted`), []byte(`"signature": "\nuntrusted`), 1))
	f.Add([]byte(`{"project":"app","version":"1.0.0","sha256":"` + strings.Repeat("a", 64) + `","object":"app/1.0.0/data/x","signature":"untrusted comment: \nRUQ\ntrusted comment: \n\n"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseManifest(data, "app", "1.0.0")
		if err != nil {
			return
		}
		switch info := checkSignature(&m, []minisign.PublicKey{other}); info.Status {
		case SignatureBad, SignatureUntrusted, SignatureUnsigned:
		default:
			t.Fatalf("status %q against a key that signed nothing", info.Status)
		}
		canon, _, err := canonicalManifest(data)
		if err != nil || !bytes.Equal(canon, signedCanon) {
			return
		}
		if checkSignature(&m, []minisign.PublicKey{pub}).Status != SignatureVerified {
			return // such as a damaged signature member
		}
		m.Object, m.Signature, m.raw = signed.Object, signed.Signature, nil
		if !m.Created.Equal(signed.Created) {
			t.Fatalf("signed form with created %v, signed %v", m.Created, signed.Created)
		}
		m.Created = signed.Created
		if !reflect.DeepEqual(m, signed) {
			t.Fatalf("signed form decodes to another manifest:\n%+v\n%+v", m, signed)
		}
	})
}

func FuzzParsePublicKey(f *testing.F) {
	pub, _ := fixedKey(f)
	file, _ := pub.MarshalText()
	f.Add(string(file))
	f.Add(pub.String())
	f.Add("untrusted comment: x\r\n" + pub.String() + "\r\n")
	f.Add("RWQ")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParsePublicKey(s)
		if err != nil {
			return
		}
		again, err := ParsePublicKey(k.String())
		if err != nil || !again.Equal(k) {
			t.Fatalf("key %q does not round-trip: %v", s, err)
		}
	})
}
