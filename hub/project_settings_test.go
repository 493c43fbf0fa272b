package hub_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"aead.dev/minisign"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/hub"
	"github.com/berth-dev/berth/hub/db"
)

// TestProjectSettings: on both engines, a project admin changes the
// description and trusted keys; every bad input is refused with the field
// it is about and leaves the stored settings as they were; name, data
// plane and prefix cannot change; members who are not admins cannot
// change anything; the audit log names the changed fields, not values.
func TestProjectSettings(t *testing.T) {
	engines(t, func(t *testing.T, s *hub.Server, _ func() string) {
		srv := httptest.NewServer(s.Handler())
		defer srv.Close()
		token, _ := projectHub(t, s, srv.URL)
		admin := &client{t: t, url: srv.URL, token: token}
		var msg string
		var bob struct {
			Token struct{ Token string } `json:"token"`
		}
		if code := admin.do("POST", "/api/v1/users", `{"email":"bob@example.com"}`, &bob); code != 201 {
			t.Fatalf("create bob: %d", code)
		}
		if code := admin.do("PUT", "/api/v1/projects/app/members/bob@example.com", `{"role":"writer"}`, &msg); code != 200 {
			t.Fatalf("member: %d %s", code, msg)
		}
		bobc := &client{t: t, url: srv.URL, token: bob.Token.Token}

		pub1, _, _ := minisign.GenerateKey(rand.Reader)
		pub2, _, _ := minisign.GenerateKey(rand.Reader)
		pubFile, _ := pub2.MarshalText() // a whole .pub file: comment line and key
		type settings struct {
			Name, Dataplane, Prefix, Description string
			TrustedKeys                          []string `json:"trusted_keys"`
			TrustedKeyIDs                        []string `json:"trusted_key_ids"`
			Changed                              []string `json:"changed"`
		}
		body := func(v any) string { b, _ := json.Marshal(v); return string(b) }
		var got settings
		if code := admin.do("PATCH", "/api/v1/projects/app", body(map[string]any{
			"description":  "  Release builds of app.\r\nOwned by the platform team.\t(#platform)  ",
			"trusted_keys": []string{pub1.String(), string(pubFile)}}), &got); code != 200 {
			t.Fatalf("patch: %d", code)
		}
		want := settings{Name: "app", Dataplane: "dp", Prefix: "rel/app", Description: "Release builds of app.\nOwned by the platform team.\t(#platform)",
			TrustedKeys: []string{pub1.String(), pub2.String()}, Changed: []string{"description", "trusted_keys"}}
		if got.Description != want.Description || strings.Join(got.TrustedKeys, " ") != strings.Join(want.TrustedKeys, " ") ||
			strings.Join(got.Changed, ",") != "description,trusted_keys" || got.Prefix != want.Prefix || len(got.TrustedKeyIDs) != 2 {
			t.Errorf("patched settings: %+v, want %+v", got, want)
		}
		stored := func() settings {
			t.Helper()
			var s settings
			if code := bobc.do("GET", "/api/v1/projects/app/settings", "", &s); code != 200 {
				t.Fatalf("settings read by a member: %d", code)
			}
			return s
		}
		before := stored()
		if before.Description != want.Description || len(before.TrustedKeys) != 2 || len(before.TrustedKeyIDs) != 2 ||
			before.TrustedKeyIDs[0] != artifact.KeyID(pub1.ID()) || before.TrustedKeyIDs[1] != artifact.KeyID(pub2.ID()) {
			t.Errorf("settings as read: %+v", before)
		}
		var info struct {
			settings
			Members []struct{ Email string } `json:"members"`
		}
		if code := bobc.do("GET", "/api/v1/projects/app", "", &info); code != 200 || info.Description != want.Description ||
			len(info.TrustedKeyIDs) != 2 || len(info.Members) == 0 {
			t.Errorf("the project as GET /api/v1/projects/app shows it: %d %+v", code, info)
		}

		for _, tc := range []struct {
			name, body, field string
			code              int
		}{
			{"bad key", body(map[string]any{"description": "new", "trusted_keys": []string{pub1.String(), "RWQnot-a-key"}}), "trusted_keys", 400},
			{"duplicate key", body(map[string]any{"trusted_keys": []string{pub1.String(), pub1.String()}}), "trusted_keys", 400},
			{"too many keys", body(map[string]any{"trusted_keys": strings.Split(strings.Repeat(pub1.String()+" ", 17), " ")[:17]}), "trusted_keys", 400},
			{"control character", body(map[string]any{"description": "bell\a", "trusted_keys": []string{}}), "description", 400},
			{"bidi override", body(map[string]any{"description": "safe\u202Eexe.txt"}), "description", 400},
			{"too long", body(map[string]any{"description": strings.Repeat("é", 2001)}), "description", 400},
			{"rename", body(map[string]any{"name": "app2", "description": "x"}), "name", 400},
			{"move", body(map[string]any{"dataplane": "other"}), "dataplane", 400},
			{"prefix", body(map[string]any{"prefix": "elsewhere"}), "prefix", 400},
			{"nothing", `{}`, "", 400},
			{"unknown field", `{"retention":"30d"}`, "", 400},
		} {
			t.Run(tc.name, func(t *testing.T) {
				req, _ := http.NewRequest("PATCH", srv.URL+"/api/v1/projects/app", strings.NewReader(tc.body))
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				data, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var e struct {
					Error struct{ Code, Message, Field string } `json:"error"`
				}
				json.Unmarshal(data, &e)
				if resp.StatusCode != tc.code || e.Error.Field != tc.field || (tc.field != "" && !strings.HasPrefix(e.Error.Message, tc.field)) {
					t.Errorf("%d %s, want %d with field %q", resp.StatusCode, data, tc.code, tc.field)
				}
				if after := stored(); after.Description != before.Description || strings.Join(after.TrustedKeys, " ") != strings.Join(before.TrustedKeys, " ") {
					t.Errorf("a refused change was stored: %+v, was %+v", after, before)
				}
			})
		}

		// The fixed fields may be sent unchanged (a client echoing what it read).
		if code := admin.do("PATCH", "/api/v1/projects/app", body(map[string]any{"name": "app", "dataplane": "dp", "prefix": "rel/app", "trusted_keys": []string{}}), &got); code != 200 ||
			len(got.TrustedKeys) != 0 || strings.Join(got.Changed, ",") != "trusted_keys" || got.Description != want.Description {
			t.Errorf("clear the keys, echoing the fixed fields: %d %+v", code, got)
		}
		if code := bobc.do("PATCH", "/api/v1/projects/app", `{"description":"mine now"}`, &msg); code != http.StatusForbidden {
			t.Errorf("a writer changes the settings: %d %s", code, msg)
		}
		if code := admin.do("PATCH", "/api/v1/projects/nope", `{"description":"x"}`, &msg); code != http.StatusNotFound {
			t.Errorf("an unknown project: %d %s", code, msg)
		}

		var audit struct {
			Entries []struct{ Object, Outcome string } `json:"entries"`
		}
		if code := admin.do("GET", "/api/v1/audit?action=project.settings.set&outcome=ok", "", &audit); code != 200 || len(audit.Entries) != 2 ||
			audit.Entries[0].Object != "project/app/settings=description,trusted_keys" || audit.Entries[1].Object != "project/app/settings=trusted_keys" {
			t.Errorf("audit of the changes: %d %+v", code, audit)
		}
		entries, err := s.DB.SearchAudit(context.Background(), db.AuditFilter{Action: "project.settings.set"})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if strings.Contains(e.Object, "platform") || strings.Contains(e.Object, "RWQ") || strings.Contains(e.Object, "mine now") {
				t.Errorf("an audit entry holds a value: %+v", e)
			}
		}
	})
}

// BenchmarkProjectSettings: GET /api/v1/projects/{project}/settings on
// SQLite for a project trusting 16 keys: the read and key parsing that
// every version read of the hub now adds (readClient), plus the request.
func BenchmarkProjectSettings(b *testing.B) {
	s := newServer(b, "sqlite:"+b.TempDir()+"/hub.db")
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	token, p := projectHub(b, s, srv.URL)
	ctx := context.Background()
	keys := make([]string, 16)
	for i := range keys {
		pub, _, _ := minisign.GenerateKey(rand.Reader)
		keys[i] = pub.String()
	}
	if err := s.DB.SetProjectSettings(ctx, p.ID, db.ProjectSettingsChange{TrustedKeys: &keys}); err != nil {
		b.Fatal(err)
	}
	// /api/v1/me is the baseline: a request, its token check, an answer.
	for _, path := range []string{"/api/v1/projects/app/settings", "/api/v1/me"} {
		b.Run(path, func(b *testing.B) {
			for b.Loop() {
				req, _ := http.NewRequest("GET", srv.URL+path, nil)
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatal(resp.Status)
				}
			}
		})
	}
}

// projectHub sets up the hub at url: its first admin, a data plane stored
// directly (registering one through the API checks its identities against
// real storage), and project app on it. It returns the admin's token and
// the project.
func projectHub(t testing.TB, s *hub.Server, url string) (string, *db.Project) {
	t.Helper()
	resp, err := http.Post(url+"/api/v1/setup", "application/json", strings.NewReader(`{"code":"0123456789abcdef0123456789abcdef","email":"ana@example.com"}`))
	if err != nil {
		t.Fatal(err)
	}
	var setup struct {
		User  struct{ ID int64 }     `json:"user"`
		Token struct{ Token string } `json:"token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&setup)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("setup: %s %v", resp.Status, err)
	}
	ctx := context.Background()
	org, err := s.DB.UserOrganisation(ctx, setup.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	dp := &db.DataPlane{OrgID: org.ID, Name: "dp", Kind: "s3compat", Settings: `{"bucket":"b","prefix":"rel"}`}
	if err := s.DB.CreateDataPlane(ctx, dp); err != nil {
		t.Fatal(err)
	}
	p := &db.Project{OrgID: org.ID, Name: "app", DataPlaneID: dp.ID, Prefix: "rel/app"}
	if err := s.DB.CreateProject(ctx, p, setup.User.ID); err != nil {
		t.Fatal(err)
	}
	return setup.Token.Token, p
}
