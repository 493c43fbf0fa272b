package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/internal/cli"
)

// settingsScenario edits a project's settings in the browser: a bad
// trusted key first (its error beside the field, nothing stored), then the
// public key of a key pair from berth keygen, pasted as the whole .pub
// file; a version the writer stages signed with that key's secret then
// shows a verified signature. writerToken is a writer's API token.
func settingsScenario(t *testing.T, b *tab, project, writerToken string) {
	dir := t.TempDir()
	env := map[string]string{"XDG_CONFIG_HOME": filepath.Join(dir, "config"), "XDG_STATE_HOME": filepath.Join(dir, "state"),
		"XDG_DATA_HOME": filepath.Join(dir, "data"), "HOME": dir}
	berth := func(stdin string, args ...string) {
		t.Helper()
		var stdout, stderr strings.Builder
		g := &cli.Globals{Stdin: strings.NewReader(stdin), Stdout: &stdout, Stderr: &stderr, Env: func(k string) string { return env[k] }}
		if code := cli.Main(context.Background(), args, g); code != 0 {
			t.Fatalf("berth %v: exit %d\n%s%s", args, code, stdout.String(), stderr.String())
		}
	}
	key, file := filepath.Join(dir, "release.key"), filepath.Join(dir, "app.bin")
	if err := os.WriteFile(file, []byte("signed release bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	berth("", "keygen", "-o", key, "--no-password")
	berth(writerToken+"\n", "login", "--url", b.base, "--token", "-")
	berth("", "stage", project, "1.2.0", file, "--sign-key", key)
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(pub)), "\n")
	pubKey, err := artifact.ParsePublicKey(string(pub))
	if err != nil {
		t.Fatal(err)
	}
	keyID := artifact.KeyID(pubKey.ID())
	settings := func() (description string, keys []string) {
		t.Helper()
		req, _ := http.NewRequest("GET", b.base+"/api/v1/projects/"+project+"/settings", nil)
		req.Header.Set("Authorization", "Bearer "+writerToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st struct {
			Description string   `json:"description"`
			TrustedKeys []string `json:"trusted_keys"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || resp.StatusCode != 200 {
			t.Fatalf("read settings: %d %v", resp.StatusCode, err)
		}
		return st.Description, st.TrustedKeys
	}

	// No trusted key yet: the signature is reported, not judged.
	b.open("/projects/" + project + "/versions/1.2.0")
	b.waitText("Staged by")
	if got := b.text(".sig-signed"); !strings.HasPrefix(got, "signed") {
		t.Errorf("a signed version of a project that trusts no key: %q", got)
	}

	// A bad key: the error is on the key field, and nothing is stored, not
	// even the valid description sent with it.
	b.open("/projects/" + project)
	b.fill(map[string]string{"#f-description": "Release builds of the app.\nOwned by the platform team.", "#f-trusted_keys": "RWQnot-a-minisign-key"})
	b.click("form[action$='/settings'] button[type=submit]")
	b.waitText("There is a problem")
	if b.attr("#f-trusted_keys", "aria-invalid") != "true" || !strings.Contains(b.attr("#f-trusted_keys", "aria-describedby"), "f-trusted_keys-error") ||
		!strings.Contains(b.text("#f-trusted_keys-error"), "trusted_keys: key 1") {
		t.Errorf("the bad key's error is not on its field: %s", eval[string](b, "document.querySelector('main').outerHTML"))
	}
	if got := b.attr("#f-description", "aria-invalid"); got != "" {
		t.Errorf("the valid description is marked invalid: %q", got)
	}
	if got := eval[string](b, "document.querySelector('#f-trusted_keys').value"); got != "RWQnot-a-minisign-key" {
		t.Errorf("the posted key is not kept in the form to correct: %q", got)
	}
	if d, k := settings(); d != "" || len(k) != 0 {
		t.Errorf("a refused change was stored: %q %q", d, k)
	}
	b.check("project-settings-error")

	// The whole .pub file, comment line included.
	b.fill(map[string]string{"#f-trusted_keys": string(pub)})
	b.click("form[action$='/settings'] button[type=submit]")
	b.waitText("The settings of this project are saved")
	if got := b.text("main .facts"); !strings.Contains(got, "key "+keyID) || !strings.Contains(got, "Owned by the platform team") {
		t.Errorf("the saved settings are not shown: %s", got)
	}
	if d, k := settings(); !strings.HasPrefix(d, "Release builds") || len(k) != 1 || k[0] != lines[1] {
		t.Errorf("stored settings: %q %q, want the key %s", d, k, lines[1])
	}
	b.check("project-settings")

	b.open("/projects/" + project + "/versions/1.2.0")
	b.waitText("Staged by")
	if got := b.text(".sig-verified"); !strings.HasPrefix(got, "verified") || !strings.Contains(got, keyID) {
		t.Errorf("the signature of a version signed by a trusted key: %q; the page shows:\n%s", got, b.text("main"))
	}
	b.check("version-signed")
}
