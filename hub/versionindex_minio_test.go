package hub_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/dataplane"
	"github.com/berth-dev/berth/hub"
	"github.com/berth-dev/berth/internal/cli"
	"github.com/berth-dev/berth/internal/testenv"
)

// versionsPage is the paged answer of GET .../versions.
type versionsPage struct {
	Versions []struct {
		Version    string    `json:"version"`
		Created    time.Time `json:"created"`
		Regions    []string  `json:"regions"`
		Prerelease bool      `json:"prerelease"`
	} `json:"versions"`
	Total            int       `json:"total"`
	NextCursor       string    `json:"next_cursor"`
	Latest           string    `json:"latest"`
	LatestPrerelease string    `json:"latest_prerelease"`
	Warning          string    `json:"warning"`
	IndexedAt        time.Time `json:"indexed_at"`
}

// words returns the page as "version[*]@region,region" words.
func (p versionsPage) words() []string {
	var out []string
	for _, v := range p.Versions {
		w := v.Version
		if v.Prerelease {
			w += "*"
		}
		out = append(out, w+"@"+strings.Join(v.Regions, ","))
	}
	return out
}

// failingLists stands in front of an S3 server and, while failing is set,
// refuses listings (ListObjectsV2) and passes everything else, STS
// included: a region whose listing fails although credentials were vended.
func failingLists(t *testing.T, target string, failing *atomic.Bool) string {
	u, _ := url.Parse(target)
	proxy := httputil.NewSingleHostReverseProxy(u) // keeps the Host header the client signed
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() && r.Method == http.MethodGet && r.URL.Query().Has("list-type") {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>listing refused by the test</Message></Error>`)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// registerMinIO registers the data plane of deployMinIO at endpoints eps
// (NAME=URL) and creates project on it.
func registerMinIO(t *testing.T, admin *client, eps []string, ids map[string]dataplane.Credentials, project string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"name": "minio", "kind": "s3compat", "endpoints": eps, "bucket": "berth-releases", "prefix": "rel",
		"writer": map[string]string{"access_key_id": ids["writer"].AccessKeyID, "secret_access_key": ids["writer"].SecretAccessKey},
		"reader": map[string]string{"access_key_id": ids["reader"].AccessKeyID, "secret_access_key": ids["reader"].SecretAccessKey}})
	var msg string
	if code := admin.do("POST", "/api/v1/dataplanes", string(body), &msg); code != http.StatusCreated {
		t.Fatalf("register data plane: %d %s", code, msg)
	}
	if code := admin.do("POST", "/api/v1/projects", `{"name":"`+project+`","dataplane":"minio"}`, &msg); code != http.StatusCreated {
		t.Fatalf("create project: %d %s", code, msg)
	}
}

// The hub's version index, end to end on two MinIO regions: a stage the
// CLI makes through the hub shows at once; what changes in the buckets
// behind the hub's back shows after the freshness window; a region that
// does not answer drops nothing; pages follow the stores' order.
func TestVersionIndexOnMinIO(t *testing.T) {
	regions := testenv.StartRegions(t, 2)
	ids := deployMinIO(t, regions)
	s := newServer(t, "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
	s.Secrets = newBox(t)
	// A clock the test moves: the index is fresh for a minute.
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	s.Now = func() time.Time { return time.Unix(0, clock.Load()) }
	advance := func(d time.Duration) { clock.Add(int64(d)) }
	s.VersionsFresh = time.Minute
	// The hub, or while refuseRefresh is set, a hub that cannot index.
	var refuseRefresh atomic.Bool
	handler := s.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuseRefresh.Load() && strings.HasSuffix(r.URL.Path, "/refresh") {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":{"code":"unavailable","message":"the test refuses"}}`)
			return
		}
		handler.ServeHTTP(w, r)
	}))
	defer srv.Close()
	admin := setupAdmin(t, srv.URL)

	var failing atomic.Bool
	eps := []string{regions[0].Region + "=" + regions[0].Endpoint, regions[1].Region + "=" + failingLists(t, regions[1].Endpoint, &failing)}
	registerMinIO(t, admin, eps, ids, "app")
	var msg string
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "app.bin")
	os.WriteFile(file, []byte("release bytes"), 0o644)
	// direct stages with vended credentials, as a CI job that never tells
	// the hub.
	var w vended
	if code := admin.do("POST", "/api/v1/projects/app/credentials", `{"role":"write"}`, &w); code != 200 {
		t.Fatalf("vend write: %d", code)
	}
	direct := w.client(t)
	stage := func(versions ...string) {
		t.Helper()
		for _, v := range versions {
			if _, err := direct.Stage(ctx, "app", v, file, artifact.StageOptions{}); err != nil {
				t.Fatalf("stage %s: %v", v, err)
			}
		}
	}
	page := func(query string) versionsPage {
		t.Helper()
		var p versionsPage
		if code := admin.do("GET", "/api/v1/projects/app/versions?"+query, "", &p); code != 200 {
			t.Fatalf("GET versions?%s: %d", query, code)
		}
		return p
	}
	both := "@" + regions[0].Region + "," + regions[1].Region

	// The first page lists the stores (the index was never synced).
	stage("1.0.0", "1.1.0-rc.1", "1.1.0-rc.2")
	p := page("order=newest&limit=50")
	if got := strings.Join(p.words(), " "); got != "1.1.0-rc.2*"+both+" 1.1.0-rc.1*"+both+" 1.0.0"+both || p.Total != 3 ||
		p.Latest != "1.0.0" || p.LatestPrerelease != "1.1.0-rc.2" || !p.IndexedAt.Equal(s.Now().UTC().Truncate(time.Millisecond)) {
		t.Fatalf("first page: %s, %+v", got, p)
	}
	synced := p.IndexedAt

	// (a) The CLI stages through the hub and tells it: the page shows the
	// version at once, from the index (indexed_at has not moved), with
	// the pointers it moved and the manifest's staged_by.
	cliDir := t.TempDir()
	cliEnv := map[string]string{"XDG_CONFIG_HOME": filepath.Join(cliDir, "config"), "XDG_STATE_HOME": filepath.Join(cliDir, "state"),
		"XDG_DATA_HOME": filepath.Join(cliDir, "data"), "HOME": cliDir}
	berth := func(stdin string, args ...string) string {
		t.Helper()
		var out strings.Builder
		g := &cli.Globals{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &out, Env: func(k string) string { return cliEnv[k] }}
		if code := cli.Main(ctx, args, g); code != 0 {
			t.Fatalf("berth %v: exit %d:\n%s", args, code, out.String())
		}
		return out.String()
	}
	berth(admin.token+"\n", "login", "--url", srv.URL, "--token", "-")
	if out := berth("", "stage", "app", "1.1.0", file); strings.Contains(out, "warning") {
		t.Errorf("stage through the hub warns:\n%s", out)
	}
	p = page("order=newest&limit=2")
	if got := strings.Join(p.words(), " "); got != "1.1.0"+both+" 1.1.0-rc.2*"+both || p.Total != 4 || p.Latest != "1.1.0" ||
		p.NextCursor != "1.1.0-rc.2" || !p.IndexedAt.Equal(synced) {
		t.Errorf("page after a stage through the hub: %s, %+v", got, p)
	}
	if rows, err := s.DB.VersionPage(ctx, projectID(t, s, "app"), nil, true, 1); err != nil || len(rows) != 1 || rows[0].StagedBy != "admin@example.com" {
		t.Errorf("indexed row of the hub-staged version: %+v, %v", rows, err)
	}
	// A hub that cannot index fails no stage: the bytes are staged, the
	// CLI warns, and the version waits for the next listing.
	refuseRefresh.Store(true)
	if out := berth("", "stage", "app", "1.1.1", file); !strings.Contains(out, "warning: could not tell hub") || !strings.Contains(out, "staged app 1.1.1") {
		t.Errorf("stage through a hub that cannot index:\n%s", out)
	}
	refuseRefresh.Store(false)
	if p := page("order=newest&limit=1"); p.Versions[0].Version != "1.1.0" || p.Total != 4 {
		t.Errorf("after a stage the hub was not told of: %v total %d", p.words(), p.Total)
	}
	// The hub reads the stores: a version nobody staged is not indexed,
	// and a reader may not ask.
	var refreshed struct {
		Indexed bool     `json:"indexed"`
		Regions []string `json:"regions"`
	}
	if code := admin.do("POST", "/api/v1/projects/app/versions/9.9.9/refresh", "", &refreshed); code != 200 || refreshed.Indexed {
		t.Errorf("refresh of a version no region holds: %d %+v", code, refreshed)
	}
	if code := admin.do("POST", "/api/v1/projects/app/versions/latest/refresh", "", &msg); code != http.StatusBadRequest {
		t.Errorf("refresh of latest: %d %s, want 400", code, msg)
	}
	var created struct {
		Token struct{ Token string } `json:"token"`
	}
	if code := admin.do("POST", "/api/v1/users", `{"email":"deploy@example.com"}`, &created); code != http.StatusCreated {
		t.Fatalf("create user: %d", code)
	}
	if code := admin.do("PUT", "/api/v1/projects/app/members/deploy@example.com", `{"role":"reader"}`, &msg); code != 200 {
		t.Fatalf("add reader: %d %s", code, msg)
	}
	reader := &client{t: t, url: srv.URL, token: created.Token.Token}
	if code := reader.do("POST", "/api/v1/projects/app/versions/1.1.0/refresh", "", &msg); code != http.StatusForbidden {
		t.Errorf("a reader refreshes: %d %s, want 403", code, msg)
	}
	if p := page("limit=50"); p.Total != 4 {
		t.Errorf("after refreshing a missing version: %+v", p)
	}

	// (b) A version staged behind the hub's back: the fresh index does not
	// show it; after the window, a page starts a listing in the background
	// and the next page shows it.
	stage("2.0.0")
	if p := page("order=newest&limit=1"); p.Versions[0].Version != "1.1.0" {
		t.Errorf("within the window: %v, want the index's 1.1.0 first", p.words())
	}
	advance(61 * time.Second)
	page("order=newest&limit=1")
	s.WaitVersionSyncs()
	p = page("order=newest&limit=1")
	if p.Versions[0].Version != "2.0.0" || p.Total != 6 || !p.IndexedAt.After(synced) {
		t.Errorf("after the window: %v total %d indexed at %v", p.words(), p.Total, p.IndexedAt)
	}

	// (c) A version deleted from the buckets goes at the next listing.
	for _, m := range regions {
		if _, err := m.S3Client(t).DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("berth-releases"), Key: aws.String("rel/app/1.1.0-rc.1/manifest.json")}); err != nil {
			t.Fatal(err)
		}
	}
	advance(61 * time.Second)
	page("limit=1")
	s.WaitVersionSyncs()
	if p := page("limit=50"); p.Total != 5 || slices.Contains(p.words(), "1.1.0-rc.1*"+both) {
		t.Errorf("after a deletion: %v", p.words())
	}

	// (d) The second region refuses listings and 1.0.0 is deleted from the
	// first: the listing cannot tell whether 1.0.0 is gone, so nothing is
	// deleted or narrowed, and it does not count as a sync.
	if _, err := regions[0].S3Client(t).DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("berth-releases"), Key: aws.String("rel/app/1.0.0/manifest.json")}); err != nil {
		t.Fatal(err)
	}
	failing.Store(true)
	before := page("limit=50")
	advance(61 * time.Second)
	page("limit=1")
	s.WaitVersionSyncs()
	if p := page("limit=50"); !slices.Equal(p.words(), before.words()) || !p.IndexedAt.Equal(before.IndexedAt) {
		t.Errorf("after a listing with a region failing:\n got %v (indexed at %v)\nwant %v (indexed at %v)", p.words(), p.IndexedAt, before.words(), before.IndexedAt)
	}
	// The unpaged listing (the truth) says so, and changes nothing either.
	var all versionsPage
	if code := admin.do("GET", "/api/v1/projects/app/versions", "", &all); code != 200 || all.Warning == "" || all.Total != 4 {
		t.Errorf("unpaged listing with a region failing: %d %+v", code, all)
	}
	if p := page("limit=50"); !slices.Equal(p.words(), before.words()) {
		t.Errorf("after an unpaged listing with a region failing: %v", p.words())
	}
	// The region answers again: 1.0.0 is only there.
	failing.Store(false)
	advance(61 * time.Second)
	page("limit=1")
	s.WaitVersionSyncs()
	if p := page("limit=1"); len(p.Versions) != 1 || p.Versions[0].Version != "1.0.0" || !slices.Equal(p.Versions[0].Regions, []string{regions[1].Region}) {
		t.Errorf("once the region answers: %v", p.words())
	}

	// (e) Pages over the index, both ways, in the stores' order.
	stage("1.1.0-alpha", "1.1.0-alpha.1", "1.1.0-alpha.beta", "1.1.0-beta.2", "1.1.0-beta.11", "1.1.0-1", "1.2.0", "1.10.0", "10.0.0-rc.1")
	all = versionsPage{}
	if code := admin.do("GET", "/api/v1/projects/app/versions", "", &all); code != 200 || all.Warning != "" || all.Total != 14 {
		t.Fatalf("unpaged listing: %d %+v", code, all)
	}
	truth := all.words()
	for _, order := range []string{"oldest", "newest"} {
		want := slices.Clone(truth)
		if order == "newest" {
			slices.Reverse(want)
		}
		var got []string
		cursor := ""
		for pages := 0; pages < 10; pages++ {
			p := page("order=" + order + "&limit=4&cursor=" + url.QueryEscape(cursor))
			got = append(got, p.words()...)
			if p.Total != 14 || len(p.Versions) > 4 {
				t.Fatalf("%s page %d: %+v", order, pages, p)
			}
			if cursor = p.NextCursor; cursor == "" {
				break
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s first, pages of 4:\n got %v\nwant %v", order, got, want)
		}
	}
	// Bad input names its field, as before the index.
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "cursor=v1.0.0&limit=5", "order=up&limit=5"} {
		resp, err := http.DefaultClient.Do(authorized(t, admin, "/api/v1/projects/app/versions?"+q))
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Error struct{ Code, Field string } `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		field, _, _ := strings.Cut(q, "=")
		if strings.HasPrefix(q, "cursor") {
			field = "cursor"
		}
		if resp.StatusCode != 400 || e.Error.Code != "invalid" || e.Error.Field != field {
			t.Errorf("versions?%s: %d %+v, want 400 naming %s", q, resp.StatusCode, e, field)
		}
	}

	// Every refresh is audited.
	entries, err := s.DB.AuditLog(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	refreshes := 0
	for _, e := range entries {
		if e.Action == "version.refresh" {
			refreshes++
		}
	}
	if refreshes != 4 {
		t.Errorf("%d version.refresh audit entries, want 4 (the CLI's stage, two by hand, the reader's refused one)", refreshes)
	}
}

func authorized(t *testing.T, c *client, path string) *http.Request {
	req, err := http.NewRequest("GET", c.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	return req
}

func projectID(t *testing.T, s *hub.Server, name string) int64 {
	t.Helper()
	u, err := s.DB.UserByEmail(context.Background(), "admin@example.com")
	if err != nil {
		t.Fatal(err)
	}
	org, err := s.DB.UserOrganisation(context.Background(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.DB.ProjectByName(context.Background(), org.ID, name)
	if err != nil {
		t.Fatal(err)
	}
	return p.ID
}
