package hub_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/hub"
	"github.com/berth-dev/berth/hub/db"
	"github.com/berth-dev/berth/internal/testenv"
)

// BenchmarkHubLoad measures the hub under 50 concurrent clients on SQLite
// and PostgreSQL: an authenticated read (GET /api/v1/me: token lookup and
// user) and an audited write (PUT a project member: token lookup, role
// checks, upsert, hash-chained audit append). It reports requests per
// second, p50 and p99 latency, and the process's peak RSS.
//
//	go test -run '^$' -bench HubLoad -benchtime 2000x ./hub
func BenchmarkHubLoad(b *testing.B) {
	benchEngines(b, func(b *testing.B, s *hub.Server, srv *httptest.Server, token string) {
		for _, op := range []struct{ name, method, path, body string }{
			{"me", "GET", "/api/v1/me", ""},
			{"member-set", "PUT", "/api/v1/projects/app/members/ana@example.com", `{"role":"admin"}`},
		} {
			b.Run(op.name, func(b *testing.B) {
				benchLoad(b, srv.URL, token, op.method, op.path, op.body)
			})
		}
	})
}

// benchEngines runs f on a hub on SQLite and one on PostgreSQL, each with
// the project of benchSetup and a token of its admin.
func benchEngines(b *testing.B, f func(b *testing.B, s *hub.Server, srv *httptest.Server, token string)) {
	engines := map[string]func(b *testing.B) string{
		"sqlite":   func(b *testing.B) string { return "sqlite:" + filepath.Join(b.TempDir(), "hub.db") },
		"postgres": func(b *testing.B) string { return testenv.StartPostgres(b).URL },
	}
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			s := newServer(b, engines[engine](b))
			srv := httptest.NewServer(s.Handler())
			defer srv.Close()
			f(b, s, srv, benchSetup(b, s, srv.URL))
		})
	}
}

func benchSetup(b *testing.B, s *hub.Server, url string) string {
	resp, err := http.Post(url+"/api/v1/setup", "application/json", strings.NewReader(`{"code":"0123456789abcdef0123456789abcdef","email":"ana@example.com"}`))
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	i := strings.Index(string(body), hub.TokenPrefix)
	if i < 0 {
		b.Fatalf("setup: %s", body)
	}
	token := string(body[i:])
	token = token[:strings.IndexByte(token, '"')]
	// A project to write members of; the data plane row is inserted
	// directly (registering one checks its identities against a live service).
	ctx := context.Background()
	u, err := s.DB.UserByEmail(ctx, "ana@example.com")
	if err != nil {
		b.Fatal(err)
	}
	org, err := s.DB.UserOrganisation(ctx, u.ID)
	if err != nil {
		b.Fatal(err)
	}
	dp := &db.DataPlane{OrgID: org.ID, Name: "minio", Kind: "s3compat", Settings: `{"bucket":"b","prefix":"rel"}`, Secrets: "{}"}
	if err := s.DB.CreateDataPlane(ctx, dp); err != nil {
		b.Fatal(err)
	}
	if err := s.DB.CreateProject(ctx, &db.Project{OrgID: org.ID, Name: "app", DataPlaneID: dp.ID, Prefix: "rel/app"}, u.ID); err != nil {
		b.Fatal(err)
	}
	return token
}

func benchLoad(b *testing.B, url, token, method, path, body string) {
	const clients = 50
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	lat := make([]time.Duration, b.N)
	var next, failed int64
	var mu sync.Mutex
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= int64(b.N) {
					return
				}
				req, _ := http.NewRequest(method, url+path, strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+token)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				lat[i] = time.Since(t0)
				if err != nil || resp.StatusCode >= 500 {
					mu.Lock()
					failed++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if failed > 0 {
		b.Errorf("%d of %d requests failed", failed, b.N)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(peakRSSMiB(), "peak-RSS-MiB")
}

// peakRSSMiB reads the process's high-water resident set (Linux).
func peakRSSMiB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil || runtime.GOOS != "linux" {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(rest), "%f", &kb)
			return kb / 1024
		}
	}
	return 0
}
