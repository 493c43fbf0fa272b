package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/hub/web"
)

type noSessions struct{}

func (noSessions) CSRFToken(*http.Request) string { return "csrf" }

// fakeVersionsAPI answers the calls of the versions page for a project of
// n versions, paging them as the hub's API does (newest first, cursor).
func fakeVersionsAPI(n int) http.Handler {
	type version struct {
		Version    string    `json:"version"`
		Created    time.Time `json:"created"`
		Regions    []string  `json:"regions"`
		Prerelease bool      `json:"prerelease"`
	}
	all := make([]version, n)
	for i := range all {
		all[i] = version{Version: fmt.Sprintf("%d.%d.%d", i/1000, i/10%100, i%10), Created: time.Unix(int64(i), 0), Regions: []string{"eu-west-1", "us-east-1"}}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/me", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"email": "ana@example.com"})
	})
	mux.HandleFunc("GET /api/v1/organisations", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"organisations": []map[string]any{{"name": "default", "role": "admin", "selected": true}}})
	})
	mux.HandleFunc("GET /api/v1/projects/{project}/versions", func(w http.ResponseWriter, r *http.Request) {
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		hi := len(all)
		if c := r.URL.Query().Get("cursor"); c != "" {
			for hi > 0 && all[hi-1].Version != c {
				hi--
			}
			hi--
		}
		var page []version
		for i := hi - 1; i >= 0 && len(page) < limit; i-- {
			page = append(page, all[i])
		}
		json.NewEncoder(w).Encode(map[string]any{"project": "app", "versions": page, "total": len(all),
			"next_cursor": page[len(page)-1].Version, "latest": all[len(all)-1].Version})
	})
	return mux
}

// BenchmarkVersionsPage10k: the web UI's share of the versions page of a
// project with 10,000 versions, one page of it, through its in-process API
// calls (the hub's own share, paging the 10,000, is BenchmarkPageVersions10k
// in package hub).
func BenchmarkVersionsPage10k(b *testing.B) {
	ui := web.New(fakeVersionsAPI(10000), noSessions{}, web.Paths{SignIn: "/signin", SignOut: "/auth/logout"})
	for b.Loop() {
		rec := httptest.NewRecorder()
		ui.ServeHTTP(rec, httptest.NewRequest("GET", "/projects/app/versions?cursor=5.0.0", nil))
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), "4.99.9") || !strings.Contains(rec.Body.String(), "Older versions") {
			b.Fatalf("%d\n%s", rec.Code, rec.Body.String())
		}
	}
}

// TestVersionsPageFast holds the page to its budget: under 50 ms on the
// server for a project of 10,000 versions (here far less is needed; the
// margin absorbs a loaded machine).
func TestVersionsPageFast(t *testing.T) {
	res := testing.Benchmark(BenchmarkVersionsPage10k)
	if res.N == 0 {
		t.Fatal("the benchmark did not run")
	}
	if per := time.Duration(res.NsPerOp()); per > 50*time.Millisecond {
		t.Errorf("the versions page takes %v, want under 50 ms", per)
	}
}
