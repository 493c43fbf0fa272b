package hub_test

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"aead.dev/minisign"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/internal/testenv"
)

// A download link is a presigned GET of the version's file, signed with a
// short reader session (never the reader identity's own keys), and the
// bytes come straight from the store.
func TestDownloadLinkOnMinIO(t *testing.T) {
	regions := testenv.StartRegions(t, 2)
	ids := deployMinIO(t, regions)
	s := newServer(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
	s.Secrets = newBox(t)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	admin := setupAdmin(t, srv.URL)

	var eps []string
	for _, m := range regions {
		eps = append(eps, m.Region+"="+m.Endpoint)
	}
	registerMinIO(t, admin, eps, ids, "app-a")
	var msg string
	var w vended
	if code := admin.do("POST", "/api/v1/projects/app-a/credentials", `{"role":"write"}`, &w); code != 200 {
		t.Fatalf("vend write: %d", code)
	}
	file := filepath.Join(t.TempDir(), "app.bin")
	os.WriteFile(file, []byte("release bytes for a link"), 0o644)
	if _, err := w.client(t).Stage(context.Background(), "app-a", "1.0.0", file, artifact.StageOptions{}); err != nil {
		t.Fatal(err)
	}

	var link struct {
		URL, Region, File, SHA256 string
		Size                      int64
	}
	if code := admin.do("GET", "/api/v1/projects/app-a/versions/latest/download?file=app.bin", "", &link); code != 200 {
		t.Fatalf("download link: %d", code)
	}
	u, err := url.Parse(link.URL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if exp, err := strconv.Atoi(q.Get("X-Amz-Expires")); err != nil || exp > 900 || exp < 800 {
		t.Errorf("link expires in %q seconds, want at most 15 minutes", q.Get("X-Amz-Expires"))
	}
	if q.Get("X-Amz-Security-Token") == "" || strings.HasPrefix(q.Get("X-Amz-Credential"), ids["reader"].AccessKeyID+"/") ||
		link.Region != regions[0].Region || link.Size != int64(len("release bytes for a link")) {
		t.Errorf("link %+v", link)
	}
	resp, err := http.Get(link.URL)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(got) != "release bytes for a link" {
		t.Errorf("GET link: %d %q", resp.StatusCode, got)
	}
	// The session behind the link reaches only the project's prefix.
	other, _ := url.Parse(link.URL)
	other.Path = strings.Replace(other.Path, "/app-a/", "/app-b/", 1)
	if resp, err := http.Get(other.String()); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("link edited to another project: %v %v", resp.StatusCode, err)
	}

	for _, c := range []struct {
		path string
		code int
	}{
		{"/api/v1/projects/app-a/versions/1.0.0/download", http.StatusBadRequest},
		{"/api/v1/projects/app-a/versions/1.0.0/download?file=other.bin", http.StatusNotFound},
		{"/api/v1/projects/app-a/versions/9.9.9/download?file=app.bin", http.StatusNotFound},
		{"/api/v1/projects/app-b/versions/1.0.0/download?file=app.bin", http.StatusNotFound},
	} {
		if code := admin.do("GET", c.path, "", &msg); code != c.code {
			t.Errorf("GET %s: %d %s, want %d", c.path, code, msg, c.code)
		}
	}

	// Once the project trusts a key, an unsigned version gets no link, as
	// berth download would refuse it.
	pub, _, _ := minisign.GenerateKey(rand.Reader)
	if code := admin.do("PATCH", "/api/v1/projects/app-a", `{"trusted_keys":["`+pub.String()+`"]}`, &msg); code != 200 {
		t.Fatalf("trust a key: %d %s", code, msg)
	}
	if code := admin.do("GET", "/api/v1/projects/app-a/versions/1.0.0/download?file=app.bin", "", &msg); code != http.StatusForbidden ||
		!strings.Contains(msg, "1.0.0 is unsigned") || !strings.Contains(msg, "accepts only versions signed by one of its trusted keys") {
		t.Errorf("link to an unsigned version of a project with trusted keys: %d %s", code, msg)
	}
}
