package artifact

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// goodManifest is a manifest as stage writes it, as a JSON object to edit.
func goodManifest() map[string]any {
	return map[string]any{
		"format": 1, "project": "app", "version": "1.0.0", "size": 3,
		"sha256": strings.Repeat("a", 64), "metadata": map[string]string{"commit": "abc"},
		"filename": "app.tgz", "mode": "0755", "created": "2026-01-02T03:04:05Z",
		"staged_by": "ci@host", "object": "app/1.0.0/data/x",
	}
}

// A stored manifest is outside input: read back, it must pass the rules
// stage applies, and a format this berth does not know is refused.
func TestParseManifestRejects(t *testing.T) {
	tests := []struct {
		name string
		edit func(m map[string]any)
		want string // in the error
	}{
		{"newer format", func(m map[string]any) { m["format"] = 2 }, "newer than this berth reads (format 1); upgrade berth"},
		{"no format", func(m map[string]any) { delete(m, "format") }, "manifest format 0 is unknown"},
		{"metadata key with escape", func(m map[string]any) { m["metadata"] = map[string]string{"\x1b[2J": "x"} }, "metadata: metadata key"},
		{"metadata value with escape", func(m map[string]any) { m["metadata"] = map[string]string{"k": "a\x1b]0;pwned\x07"} }, "control character"},
		{"reserved metadata key", func(m map[string]any) { m["metadata"] = map[string]string{"berth:x": "y"} }, "reserved prefix"},
		{"file name with escape", func(m map[string]any) { m["filename"] = "a\x1b[31m.tgz" }, "file name"},
		{"file name with path", func(m map[string]any) { m["filename"] = "../.bashrc" }, "path separator"},
		{"empty file name", func(m map[string]any) { m["filename"] = "" }, "file name is empty"},
		{"bad mode", func(m map[string]any) { m["mode"] = "4755" }, "file mode"},
		{"mode not octal", func(m map[string]any) { m["mode"] = "0999" }, "file mode"},
		{"short sha256", func(m map[string]any) { m["sha256"] = "abc" }, "malformed"},
		{"upper-case sha256", func(m map[string]any) { m["sha256"] = strings.Repeat("A", 64) }, "malformed"},
		{"negative size", func(m map[string]any) { m["size"] = -1 }, "negative"},
		{"other version", func(m map[string]any) { m["version"] = "1.0.1" }, "describes"},
		{"object outside", func(m map[string]any) { m["object"] = "app/1.0.0/data/../../x" }, "outside the version"},
		{"too many metadata keys", func(m map[string]any) {
			md := map[string]string{}
			for i := range MaxMetadataKeys + 1 {
				md["k"+strings.Repeat("x", i)] = "v"
			}
			m["metadata"] = md
		}, "metadata keys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := goodManifest()
			tt.edit(m)
			data, _ := json.Marshal(m)
			_, err := parseManifest(data, "app", "1.0.0")
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrCorrupt with %q", err, tt.want)
			}
		})
	}
	data, _ := json.Marshal(goodManifest())
	if _, err := parseManifest(data, "app", "1.0.0"); err != nil {
		t.Fatalf("a good manifest: %v", err)
	}
}

func FuzzParseManifest(f *testing.F) {
	good, _ := json.Marshal(goodManifest())
	f.Add(good)
	f.Add([]byte(`{"format":1,"project":"app","version":"1.0.0","object":"app/1.0.0/data/../../x"}`))
	f.Add([]byte(`{"format":2,"project":"app","version":"1.0.0","sha256":"` + strings.Repeat("a", 64) + `","filename":"a","object":"app/1.0.0/data/x"}`))
	f.Add([]byte(`{"format":1,"project":"app","version":"1.0.0","sha256":"` + strings.Repeat("a", 64) + `","filename":"a\u001b[2J","object":"app/1.0.0/data/x"}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseManifest(data, "app", "1.0.0")
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error of the wrong kind: %v", err)
			}
			return
		}
		if !strings.HasPrefix(m.Object, "app/1.0.0/data/") || strings.Contains(m.Object[len("app/1.0.0/data/"):], "/") {
			t.Fatalf("accepted object %q outside the version", m.Object)
		}
		if ValidateFilename(m.Filename) != nil || ValidateMetadata(m.Metadata) != nil || m.Format != manifestFormat {
			t.Fatalf("accepted a manifest stage would not write: %+v", m)
		}
		if m.Mode != "" && m.perm()&^0o777 != 0 {
			t.Fatalf("accepted mode %q", m.Mode)
		}
	})
}
