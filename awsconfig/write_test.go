package awsconfig

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials/ssocreds"

	"github.com/berth-dev/berth/errkind"
)

func TestWriteKeepsModeFollowsLinksAndBacksUp(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "dotfiles", "aws-config")
	os.MkdirAll(filepath.Dir(real), 0o755)
	if err := os.WriteFile(real, []byte("old\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "config")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 2, 20, 15, 0, 0, time.UTC)
	backup, err := Write(link, []byte("new\n"), now)
	if err != nil {
		t.Fatal(err)
	}
	if want := real + ".bak-20261202T201500Z"; backup != want {
		t.Errorf("backup %s, want %s", backup, want)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v %v", fi, err)
	}
	for path, want := range map[string]string{real: "new\n", backup: "old\n"} {
		data, _ := os.ReadFile(path)
		fi, _ := os.Stat(path)
		if string(data) != want || fi.Mode().Perm() != 0o640 {
			t.Errorf("%s: %q mode %v, want %q mode 0640", path, data, fi.Mode().Perm(), want)
		}
	}
	// A second write in the same second keeps the first backup.
	second, err := Write(link, []byte("newer\n"), now)
	if err != nil || second != backup+".1" {
		t.Errorf("second backup %s, %v; want %s.1", second, err, backup)
	}
	if data, _ := os.ReadFile(backup); string(data) != "old\n" {
		t.Errorf("first backup overwritten: %q", data)
	}

	// A new file: 0600 in a new 0700 directory, no backup.
	fresh := filepath.Join(dir, "home", ".aws", "config")
	if b, err := Write(fresh, []byte("x\n"), now); err != nil || b != "" {
		t.Fatalf("Write new = %q, %v", b, err)
	}
	if fi, _ := os.Stat(fresh); fi.Mode().Perm() != 0o600 {
		t.Errorf("new file mode %v, want 0600", fi.Mode().Perm())
	}
	if entries, _ := os.ReadDir(filepath.Dir(real)); len(entries) != 3 {
		t.Errorf("left behind: %v (want the file and two backups, no temporary files)", entries)
	}
}

func TestReadToken(t *testing.T) {
	now := time.Date(2026, 12, 2, 20, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	tests := []struct{ name, body, want string }{
		{"valid", `{"accessToken":"tok","expiresAt":"2026-12-02T21:00:00Z","startUrl":"https://corp.awsapps.com/start"}`, ""},
		{"missing", "", "no cached token"},
		{"expired", `{"accessToken":"tok","expiresAt":"2026-12-02T19:59:59Z","startUrl":"https://corp.awsapps.com/start"}`, "expired at 2026-12-02T19:59:59Z"},
		{"another portal", `{"accessToken":"tok","expiresAt":"2026-12-02T21:00:00Z","startUrl":"https://x.awsapps.com/start"}`, "is for https://x.awsapps.com/start"},
		{"not a token", `{"clientId":"abc"}`, "not an SSO token cache file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name+".json")
			if tt.body != "" {
				os.WriteFile(path, []byte(tt.body), 0o600)
			}
			tok, err := ReadToken(path, corp, now)
			if tt.want == "" {
				if err != nil || tok != "tok" {
					t.Errorf("ReadToken = %q, %v", tok, err)
				}
				return
			}
			if !errors.Is(err, ErrNotSignedIn) || !errors.Is(err, errkind.PermissionDenied) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ReadToken = %v, want ErrNotSignedIn saying %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "tok\"") {
				t.Errorf("the error shows the token: %v", err)
			}
		})
	}
}

func TestTokenPathIsTheSDKs(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	want, err := ssocreds.StandardCachedTokenFilepath("corp")
	if err != nil {
		t.Fatal(err)
	}
	got, err := TokenPath(func(k string) string { return map[string]string{"HOME": home}[k] }, "corp")
	if err != nil || got != want || filepath.Base(got) != "ee0bfd2552fbd840c02cc48b6e823320543c450f.json" {
		t.Errorf("TokenPath = %s, %v; want %s (sha1 of the session name)", got, err, want)
	}
}
