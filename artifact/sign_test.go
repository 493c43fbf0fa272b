package artifact_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"aead.dev/minisign"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/internal/minisigntest"
	"github.com/berth-dev/berth/store"
)

func newKey(t *testing.T) (minisign.PublicKey, *minisign.PrivateKey) {
	t.Helper()
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, &priv
}

func manifestKey(project, version string) string { return project + "/" + version + "/manifest.json" }

func readStored(t *testing.T, r artifact.Region, key string) []byte {
	t.Helper()
	rc, _, err := r.Store.Get(context.Background(), key, store.Range{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func putStored(t *testing.T, r artifact.Region, key string, data []byte) {
	t.Helper()
	if _, err := r.Store.Put(context.Background(), key, bytes.NewReader(data), int64(len(data)), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

// editManifest rewrites a stored manifest as an attacker with write access
// to the store would.
func editManifest(t *testing.T, r artifact.Region, project, version string, edit func(m map[string]any)) {
	t.Helper()
	key := manifestKey(project, version)
	var m map[string]any
	if err := json.Unmarshal(readStored(t, r, key), &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	putStored(t, r, key, data)
}

func TestSignedRoundTrip(t *testing.T) {
	ctx := context.Background()
	pub, priv := newKey(t)
	c := newClient(t, "eu-west-1", "us-east-1")
	data := random(1<<20 + 3)
	res, err := c.Stage(ctx, "app", "1.2.3", writeFile(t, data), artifact.StageOptions{SignKey: priv, Metadata: map[string]string{"commit": "abc"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.SignedBy != artifact.KeyID(pub.ID()) {
		t.Fatalf("stage signed by %q", res.SignedBy)
	}
	// The signature is committed with the manifest, in the manifest.
	for _, r := range c.Regions {
		var m artifact.Manifest
		if err := json.Unmarshal(readStored(t, r, manifestKey("app", "1.2.3")), &m); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(m.Signature, "trusted comment: berth manifest project=app version=1.2.3 sha256="+m.SHA256) {
			t.Fatalf("region %s: signature = %q", r.Name, m.Signature)
		}
	}

	c.TrustedKeys = []minisign.PublicKey{pub}
	dl, err := c.Download(ctx, "app", "latest", artifact.DownloadOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dl.Path); !bytes.Equal(got, data) || dl.Region != "eu-west-1" || len(dl.Failures) != 0 || dl.SignedBy != artifact.KeyID(pub.ID()) {
		t.Fatalf("download = %+v", dl)
	}
	d, err := c.Info(ctx, "app", "1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	want := artifact.SignatureInfo{Status: artifact.SignatureVerified, KeyID: artifact.KeyID(pub.ID())}
	if d.SignatureStatus != want {
		t.Fatalf("info signature = %+v, want %+v", d.SignatureStatus, want)
	}
	for _, r := range d.Regions {
		if r.Signature != artifact.SignatureVerified {
			t.Errorf("region %s: signature %q", r.Name, r.Signature)
		}
	}

	// Without trusted keys info still names the key, unchecked.
	c.TrustedKeys = nil
	d, err = c.Info(ctx, "app", "1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	if d.SignatureStatus.Status != artifact.SignatureUnchecked || d.SignatureStatus.KeyID != want.KeyID {
		t.Fatalf("info signature without trusted keys = %+v", d.SignatureStatus)
	}
}

// refused checks that a download with trusted keys fails with ErrUntrusted
// and the message names the problem, and that nothing was written.
func refused(t *testing.T, c *artifact.Client, project, version, want string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	_, err := c.Download(context.Background(), project, version, artifact.DownloadOptions{Path: out})
	if !errors.Is(err, artifact.ErrUntrusted) || !strings.Contains(err.Error(), want) {
		t.Fatalf("download: err = %v, want ErrUntrusted with %q", err, want)
	}
	if errors.Is(err, artifact.ErrVersionNotFound) {
		t.Fatalf("download: untrusted reported as not found: %v", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("download wrote %s despite the refusal", out)
	}
}

func TestSignatureRefusals(t *testing.T) {
	ctx := context.Background()
	pub, priv := newKey(t)
	otherPub, otherPriv := newKey(t)
	data := random(4096)

	tests := []struct {
		name string
		// setup stages and tampers in a one-region client, then returns
		// the version to download and a part of the expected error.
		setup func(t *testing.T, c *artifact.Client) (string, string)
	}{
		{"unsigned", func(t *testing.T, c *artifact.Client) (string, string) {
			mustStage(t, c, "app", "1.0.0", writeFile(t, data), artifact.StageOptions{})
			return "1.0.0", "is not signed"
		}},
		{"signed by another key", func(t *testing.T, c *artifact.Client) (string, string) {
			mustStage(t, c, "app", "1.0.0", writeFile(t, data), artifact.StageOptions{SignKey: otherPriv})
			return "1.0.0", "signed by key " + artifact.KeyID(otherPub.ID()) + ", which is not trusted"
		}},
		{"metadata changed, sha256 still valid", func(t *testing.T, c *artifact.Client) (string, string) {
			mustStage(t, c, "app", "1.0.0", writeFile(t, data), artifact.StageOptions{SignKey: priv, Metadata: map[string]string{"commit": "abc"}})
			editManifest(t, c.Regions[0], "app", "1.0.0", func(m map[string]any) {
				m["metadata"] = map[string]any{"commit": "evil"}
			})
			return "1.0.0", "does not match the manifest"
		}},
		{"file name changed", func(t *testing.T, c *artifact.Client) (string, string) {
			mustStage(t, c, "app", "1.0.0", writeFile(t, data), artifact.StageOptions{SignKey: priv})
			editManifest(t, c.Regions[0], "app", "1.0.0", func(m map[string]any) { m["filename"] = "install.sh" })
			return "1.0.0", "does not match the manifest"
		}},
		{"member added in other case", func(t *testing.T, c *artifact.Client) (string, string) {
			// encoding/json fills Filename from "Filename" too.
			mustStage(t, c, "app", "1.0.0", writeFile(t, data), artifact.StageOptions{SignKey: priv})
			editManifest(t, c.Regions[0], "app", "1.0.0", func(m map[string]any) { m["Filename"] = "install.sh" })
			return "1.0.0", "does not match the manifest"
		}},
		{"bytes and manifest swapped, signature kept", func(t *testing.T, c *artifact.Client) (string, string) {
			// The attacker stages its own bytes elsewhere and moves that
			// manifest in with the genuine signature.
			mustStage(t, c, "app", "1.0.0", writeFile(t, data), artifact.StageOptions{SignKey: priv})
			sig := manifestField(t, c.Regions[0], "app", "1.0.0", "signature")
			evil := newClient(t, "evil")
			mustStage(t, evil, "app", "1.0.0", writeFile(t, []byte("#!/bin/sh\nrm -rf ~\n")), artifact.StageOptions{})
			evilManifest := readStored(t, evil.Regions[0], manifestKey("app", "1.0.0"))
			obj := manifestField(t, evil.Regions[0], "app", "1.0.0", "object")
			putStored(t, c.Regions[0], obj, readStored(t, evil.Regions[0], obj))
			putStored(t, c.Regions[0], manifestKey("app", "1.0.0"), evilManifest)
			editManifest(t, c.Regions[0], "app", "1.0.0", func(m map[string]any) { m["signature"] = sig })
			return "1.0.0", "does not match the manifest"
		}},
		{"signature of version A on version B", func(t *testing.T, c *artifact.Client) (string, string) {
			mustStage(t, c, "app", "1.0.0", writeFile(t, data), artifact.StageOptions{SignKey: priv})
			mustStage(t, c, "app", "2.0.0", writeFile(t, []byte("vulnerable old build")), artifact.StageOptions{})
			sig := manifestField(t, c.Regions[0], "app", "1.0.0", "signature")
			editManifest(t, c.Regions[0], "app", "2.0.0", func(m map[string]any) { m["signature"] = sig })
			return "2.0.0", "does not match the manifest"
		}},
		{"version A's manifest rewritten as version B", func(t *testing.T, c *artifact.Client) (string, string) {
			// Even a manifest identical in every signed byte but the
			// version fails: the version is signed, in the bytes and in
			// the trusted comment.
			mustStage(t, c, "app", "1.0.0", writeFile(t, data), artifact.StageOptions{SignKey: priv})
			obj := manifestField(t, c.Regions[0], "app", "1.0.0", "object")
			putStored(t, c.Regions[0], strings.Replace(obj, "/1.0.0/", "/2.0.0/", 1), readStored(t, c.Regions[0], obj))
			putStored(t, c.Regions[0], manifestKey("app", "2.0.0"), readStored(t, c.Regions[0], manifestKey("app", "1.0.0")))
			editManifest(t, c.Regions[0], "app", "2.0.0", func(m map[string]any) {
				m["version"] = "2.0.0"
				m["object"] = strings.Replace(obj, "/1.0.0/", "/2.0.0/", 1)
			})
			return "2.0.0", "does not match the manifest"
		}},
		{"signature removed", func(t *testing.T, c *artifact.Client) (string, string) {
			mustStage(t, c, "app", "1.0.0", writeFile(t, data), artifact.StageOptions{SignKey: priv})
			editManifest(t, c.Regions[0], "app", "1.0.0", func(m map[string]any) { delete(m, "signature") })
			return "1.0.0", "is not signed"
		}},
		{"signature garbled", func(t *testing.T, c *artifact.Client) (string, string) {
			mustStage(t, c, "app", "1.0.0", writeFile(t, data), artifact.StageOptions{SignKey: priv})
			editManifest(t, c.Regions[0], "app", "1.0.0", func(m map[string]any) { m["signature"] = "untrusted comment: x\nnot base64\n" })
			return "1.0.0", "malformed signature"
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, "eu-west-1")
			version, want := tc.setup(t, c)
			// Integrity alone does not notice: the bytes match the manifest.
			if _, err := c.Download(ctx, "app", version, artifact.DownloadOptions{Path: filepath.Join(t.TempDir(), "out")}); err != nil {
				t.Fatalf("download without trusted keys: %v", err)
			}
			c.TrustedKeys = []minisign.PublicKey{pub}
			refused(t, c, "app", version, want)
			d, err := c.Info(ctx, "app", version)
			if err != nil {
				t.Fatal(err)
			}
			if d.SignatureStatus.Status == artifact.SignatureVerified {
				t.Fatalf("info says %+v", d.SignatureStatus)
			}
		})
	}
}

func mustStage(t *testing.T, c *artifact.Client, project, version, file string, opts artifact.StageOptions) {
	t.Helper()
	if _, err := c.Stage(context.Background(), project, version, file, opts); err != nil {
		t.Fatal(err)
	}
}

func manifestField(t *testing.T, r artifact.Region, project, version, name string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(readStored(t, r, manifestKey(project, version)), &m); err != nil {
		t.Fatal(err)
	}
	s, _ := m[name].(string)
	return s
}

// A tampered region is skipped like a corrupted one: the download comes
// from the next region, and says which one failed and why.
func TestDownloadFailsOverPastBadSignature(t *testing.T) {
	ctx := context.Background()
	pub, priv := newKey(t)
	c := newClient(t, "eu-west-1", "us-east-1", "ap-southeast-2")
	data := random(64 << 10)
	if _, err := c.Stage(ctx, "app", "1.0.0", writeFile(t, data), artifact.StageOptions{SignKey: priv, Metadata: map[string]string{"commit": "abc"}}); err != nil {
		t.Fatal(err)
	}
	// Region 1: other bytes with a matching, unsigned manifest. Region 2:
	// metadata changed. Region 3 is intact.
	evil := newClient(t, "evil")
	mustStage(t, evil, "app", "1.0.0", writeFile(t, []byte("evil")), artifact.StageOptions{})
	obj := manifestField(t, evil.Regions[0], "app", "1.0.0", "object")
	putStored(t, c.Regions[0], obj, readStored(t, evil.Regions[0], obj))
	putStored(t, c.Regions[0], manifestKey("app", "1.0.0"), readStored(t, evil.Regions[0], manifestKey("app", "1.0.0")))
	editManifest(t, c.Regions[1], "app", "1.0.0", func(m map[string]any) { m["metadata"] = map[string]any{"commit": "evil"} })

	c.TrustedKeys = []minisign.PublicKey{pub}
	dl, err := c.Download(ctx, "app", "1.0.0", artifact.DownloadOptions{Path: filepath.Join(t.TempDir(), "out")})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dl.Path); !bytes.Equal(got, data) {
		t.Fatal("downloaded the attacker's bytes")
	}
	if dl.Region != "ap-southeast-2" || len(dl.Failures) != 2 ||
		!strings.Contains(dl.Failures[0].Error, "not signed") || !strings.Contains(dl.Failures[1].Error, "does not match") {
		t.Fatalf("download = %+v", dl)
	}

	// Info shows the intact copy and each region's state.
	d, err := c.Info(ctx, "app", "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if d.SignatureStatus.Status != artifact.SignatureVerified || d.Metadata["commit"] != "abc" {
		t.Fatalf("info = %+v", d)
	}
	var states []string
	for _, r := range d.Regions {
		states = append(states, r.Signature)
	}
	if got := strings.Join(states, " "); got != "unsigned bad verified" {
		t.Fatalf("region signatures = %s", got)
	}

	// With every region tampered, nothing is downloaded.
	editManifest(t, c.Regions[2], "app", "1.0.0", func(m map[string]any) { m["size"] = 1 })
	refused(t, c, "app", "1.0.0", "region ap-southeast-2")
}

// verify --repair writes a new manifest pointing at a new data key; the
// signature does not cover the key, so the repaired copy still verifies.
func TestRepairKeepsSignature(t *testing.T) {
	ctx := context.Background()
	pub, priv := newKey(t)
	c := newClient(t, "eu-west-1", "us-east-1")
	if _, err := c.Stage(ctx, "app", "1.0.0", writeFile(t, []byte("release")), artifact.StageOptions{SignKey: priv}); err != nil {
		t.Fatal(err)
	}
	if err := c.Regions[1].Store.Delete(ctx, manifestKey("app", "1.0.0")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Verify(ctx, "app", "1.0.0", true); err != nil {
		t.Fatal(err)
	}
	c.TrustedKeys = []minisign.PublicKey{pub}
	dl, err := c.Download(ctx, "app", "1.0.0", artifact.DownloadOptions{Path: filepath.Join(t.TempDir(), "out"), PreferRegion: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	if dl.Region != "us-east-1" {
		t.Fatalf("download = %+v", dl)
	}
}

func TestParsePublicKey(t *testing.T) {
	pub, _ := newKey(t)
	file, _ := pub.MarshalText()
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"pub file", string(file) + "\n", true},
		{"key line", pub.String(), true},
		{"key line with CRLF", pub.String() + "\r\n", true},
		{"empty", "", false},
		{"not base64", "RW!!", false},
		{"secret key", "untrusted comment: minisign encrypted secret key\nRWQAAEIy" + strings.Repeat("A", 200), false},
		{"three lines", string(file) + "\n" + pub.String(), false},
		{"truncated", pub.String()[:40], false},
	}
	for _, tc := range tests {
		k, err := artifact.ParsePublicKey(tc.in)
		switch {
		case tc.ok && (err != nil || !k.Equal(pub)):
			t.Errorf("%s: key %v, err %v", tc.name, k, err)
		case !tc.ok && !errors.Is(err, artifact.ErrInvalid):
			t.Errorf("%s: err = %v, want ErrInvalid", tc.name, err)
		}
	}
}

func TestParseSecretKey(t *testing.T) {
	pub, priv := newKey(t)
	plain, _ := priv.MarshalText()
	enc := minisigntest.CheapEncryptedKey(t, "correct horse", *priv)
	tests := []struct {
		name     string
		data     []byte
		password string
		want     string // error part; "" for success
	}{
		{"unencrypted", plain, "", ""},
		{"unencrypted ignores a password", plain, "x", ""},
		{"encrypted", enc, "correct horse", ""},
		{"encrypted, wrong password", enc, "battery staple", "wrong password"},
		{"encrypted, no password", enc, "", "password-protected"},
		{"public key", []byte(pub.String()), "", "secret key"},
		{"garbage", []byte("hello"), "", "secret key"},
	}
	for _, tc := range tests {
		k, err := artifact.ParseSecretKey(tc.data, tc.password)
		if tc.want == "" {
			if err != nil || !k.Equal(*priv) {
				t.Errorf("%s: err %v", tc.name, err)
			}
			continue
		}
		if !errors.Is(err, artifact.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want ErrInvalid with %q", tc.name, err, tc.want)
		}
	}
}

// A signed stage cannot add a signature to a version already staged
// without one; it says so (conflict) and changes nothing. A re-run with the
// key that signed the copies already there completes the missing regions.
func TestSignedStageOfExistingVersion(t *testing.T) {
	ctx := context.Background()
	pub, priv := newKey(t)
	_, otherPriv := newKey(t)
	c := newClient(t, "eu-west-1", "us-east-1")
	file := writeFile(t, []byte("release"))

	mustStage(t, c, "app", "1.0.0", file, artifact.StageOptions{})
	before := readStored(t, c.Regions[0], manifestKey("app", "1.0.0"))
	for _, opts := range []artifact.StageOptions{{SignKey: priv}, {SignKey: priv, DryRun: true}} {
		_, err := c.Stage(ctx, "app", "1.0.0", file, opts)
		if !errors.Is(err, artifact.ErrConflict) || !strings.Contains(err.Error(), "already staged in eu-west-1 without a signature") {
			t.Fatalf("signed stage (dry run %v) over an unsigned version: %v", opts.DryRun, err)
		}
	}
	if after := readStored(t, c.Regions[0], manifestKey("app", "1.0.0")); !bytes.Equal(before, after) {
		t.Fatal("the manifest changed")
	}

	mustStage(t, c, "app", "2.0.0", file, artifact.StageOptions{SignKey: priv})
	if _, err := c.Stage(ctx, "app", "2.0.0", file, artifact.StageOptions{SignKey: otherPriv}); !errors.Is(err, artifact.ErrConflict) || !strings.Contains(err.Error(), "without a valid signature by key") {
		t.Fatalf("stage signed by another key: %v", err)
	}

	// A stage that committed only one region, run again.
	if err := c.Regions[1].Store.Delete(ctx, manifestKey("app", "2.0.0")); err != nil {
		t.Fatal(err)
	}
	res, err := c.Stage(ctx, "app", "2.0.0", file, artifact.StageOptions{SignKey: priv})
	if err != nil || res.Regions[0].Status != artifact.StatusPresent || res.Regions[1].Status != artifact.StatusStaged {
		t.Fatalf("re-run: %+v, %v", res, err)
	}
	c.TrustedKeys = []minisign.PublicKey{pub}
	for _, r := range c.Regions {
		dl, err := c.Download(ctx, "app", "2.0.0", artifact.DownloadOptions{Path: filepath.Join(t.TempDir(), "out"), PreferRegion: r.Name})
		if err != nil || dl.Region != r.Name {
			t.Fatalf("download from %s: %+v, %v", r.Name, dl, err)
		}
	}
}

// With trusted keys, verify counts an intact copy only when it is signed
// by one: an edited manifest over the right bytes is reported, and repair
// copies from a trusted region.
func TestVerifyChecksSignatures(t *testing.T) {
	ctx := context.Background()
	pub, priv := newKey(t)
	c := newClient(t, "eu-west-1", "us-east-1", "ap-southeast-2")
	if _, err := c.Stage(ctx, "app", "1.0.0", writeFile(t, []byte("release")), artifact.StageOptions{SignKey: priv}); err != nil {
		t.Fatal(err)
	}
	editManifest(t, c.Regions[0], "app", "1.0.0", func(m map[string]any) { m["metadata"] = map[string]any{"commit": "evil"} })
	if res, err := c.Verify(ctx, "app", "1.0.0", false); err != nil {
		t.Fatalf("without trusted keys the copies are intact: %v %+v", err, res)
	}
	if err := c.Regions[1].Store.Delete(ctx, manifestKey("app", "1.0.0")); err != nil {
		t.Fatal(err)
	}

	c.TrustedKeys = []minisign.PublicKey{pub}
	res, err := c.Verify(ctx, "app", "1.0.0", true)
	if !errors.Is(err, artifact.ErrVerifyFailed) {
		t.Fatalf("verify = %v, want ErrVerifyFailed", err)
	}
	var got []string
	for _, r := range res.Regions {
		got = append(got, fmt.Sprintf("%s:%s:%v", r.Region, r.Status, r.Repaired))
	}
	if want := "eu-west-1:untrusted:false us-east-1:ok:true ap-southeast-2:ok:false"; strings.Join(got, " ") != want {
		t.Fatalf("regions = %s, want %s", strings.Join(got, " "), want)
	}
	if !strings.Contains(res.Regions[0].Error, "does not match") {
		t.Errorf("untrusted region's error = %q", res.Regions[0].Error)
	}
	// The repaired copy is the signed one.
	if md := manifestField(t, c.Regions[1], "app", "1.0.0", "signature"); md == "" {
		t.Error("us-east-1 was repaired from an unsigned copy")
	}
}
