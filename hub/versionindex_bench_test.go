package hub_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/hub"
	"github.com/berth-dev/berth/hub/db"
)

// BenchmarkVersionsPageIndex10k: GET a versions page (50, newest first,
// from a cursor in the middle) of a project with 10,000 indexed versions,
// the way the web UI asks, through the whole handler: token, project,
// index state, one keyset query. The data plane is a database row only, so
// the latest pointers are not read (they are cached per project for 10 s
// anyway; bench/hubload measures them against MinIO). "one" is one client
// at a time (ns/op is the latency); "50-clients" reports req/s.
//
//	go test -run '^$' -bench VersionsPageIndex10k ./hub
func BenchmarkVersionsPageIndex10k(b *testing.B) {
	benchEngines(b, func(b *testing.B, s *hub.Server, srv *httptest.Server, token string) {
		s.Secrets = newBox(b)
		s.VersionsFresh = time.Hour
		ctx := context.Background()
		u, _ := s.DB.UserByEmail(ctx, "ana@example.com")
		org, _ := s.DB.UserOrganisation(ctx, u.ID)
		p, err := s.DB.ProjectByName(ctx, org.ID, "app")
		if err != nil {
			b.Fatal(err)
		}
		rows := make([]db.IndexedVersion, 10000)
		for i := range rows {
			name := fmt.Sprintf("%d.%d.%d", i/1000, i/10%100, i%10)
			v, _ := artifact.ParseVersion(name)
			rows[i] = db.IndexedVersion{Version: name, SortKey: artifact.SortKey(v), Created: time.Now(), Regions: []string{"eu-west-1", "us-east-1"}}
		}
		t0 := time.Now()
		if err := s.DB.ReplaceVersionIndex(ctx, p.ID, rows, time.Now()); err != nil {
			b.Fatal(err)
		}
		b.Logf("indexed 10,000 versions in %v", time.Since(t0))
		t0 = time.Now()
		if err := s.DB.ReplaceVersionIndex(ctx, p.ID, rows, time.Now()); err != nil {
			b.Fatal(err)
		}
		b.Logf("a sync that changes nothing: %v", time.Since(t0))
		const path = "/api/v1/projects/app/versions?order=newest&limit=50&cursor=5.0.0"
		b.Run("one", func(b *testing.B) {
			client := &http.Client{}
			for b.Loop() {
				req, _ := http.NewRequest("GET", srv.URL+path, nil)
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !strings.Contains(string(body), `"next_cursor": "4.95.0"`) || !strings.Contains(string(body), `"total": 10000`) {
					b.Fatalf("%d %.300s", resp.StatusCode, body)
				}
			}
		})
		b.Run("50-clients", func(b *testing.B) {
			benchLoad(b, srv.URL, token, "GET", path, "")
		})
		// The web UI's page of the same 50 versions: session, the API call
		// in-process, the template.
		rec := httptest.NewRecorder()
		if _, err := s.StartSession(rec, httptest.NewRequest("GET", "/", nil), u.ID); err != nil {
			b.Fatal(err)
		}
		cookie := rec.Result().Cookies()[0]
		b.Run("web-page", func(b *testing.B) {
			client := &http.Client{}
			for b.Loop() {
				req, _ := http.NewRequest("GET", srv.URL+"/projects/app/versions?cursor=5.0.0", nil)
				req.AddCookie(cookie)
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !strings.Contains(string(body), "4.95.0") || !strings.Contains(string(body), "4.99.9") {
					b.Fatalf("%d %.300s", resp.StatusCode, body)
				}
			}
		})
	})
}
