package artifact

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func FuzzParseManifest(f *testing.F) {
	good, _ := json.Marshal(Manifest{Format: 1, Project: "app", Version: "1.0.0", Size: 3,
		SHA256: strings.Repeat("a", 64), Object: "app/1.0.0/data/x"})
	f.Add(good)
	f.Add([]byte(`{"project":"app","version":"1.0.0","object":"app/1.0.0/data/../../x"}`))
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
	})
}
