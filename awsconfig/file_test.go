package awsconfig

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/internal/golden"
)

func TestParseKeepsEveryByte(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"only a newline", "\n"},
		{"comments before any section", "# hello\n\n; there\n[default]\nregion = eu-west-1\n"},
		{"no final newline", "[default]\nregion = eu-west-1"},
		{"CRLF", "[default]\r\nregion = eu-west-1\r\n\r\n[profile a]\r\noutput = json\r\n"},
		{"nested values and odd spacing", "  [ profile   x ]  \n s3 =\n    max_concurrent_requests = 1\nregion=us-east-1\n"},
		{"header with a comment after it", "[default] # mine\nregion = eu-west-1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if got := string(f.Bytes()); got != tt.in {
				t.Errorf("Bytes() = %q, want %q", got, tt.in)
			}
		})
	}
}

func TestParseSectionsAndGet(t *testing.T) {
	f, err := Parse([]byte("[default]\nregion = eu-west-1\n[ profile   x ]\n s3 =\n    region = nested\n    [not a header\nregion=us-east-1\n[sso-session corp] ; c\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(f.Sections(), "|"), "default|profile x|sso-session corp"; got != want {
		t.Errorf("Sections() = %q, want %q", got, want)
	}
	if v, ok := f.Get("profile x", "region"); !ok || v != "us-east-1" {
		t.Errorf("Get(profile x, region) = %q, %v; want us-east-1 (the nested one is not the profile's)", v, ok)
	}
	if _, ok := f.Get("sso-session corp", "region"); ok {
		t.Error("Get found a key in an empty section")
	}
}

func TestParseRefusesBrokenHeaders(t *testing.T) {
	for _, in := range []string{"[default\nregion = x\n", "[]\n", "[  ]\n"} {
		_, err := Parse([]byte(in))
		if !errors.Is(err, ErrSyntax) || !errors.Is(err, errkind.Invalid) || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("Parse(%q) = %v, want ErrSyntax at line 1", in, err)
		}
	}
}

func TestProfileName(t *testing.T) {
	tests := []struct{ account, role, want string }{
		{"payments-dev", "AdministratorAccess", "payments-dev-administratoraccess"},
		{"Payments Prod", "ReadOnly", "payments-prod-readonly"},
		{"acme (EU)", "Billing+Ops", "acme-eu-billing-ops"},
		{"team_a.dev", "x@y", "team_a.dev-x-y"},
	}
	for _, tt := range tests {
		if got := ProfileName(tt.account, tt.role); got != tt.want {
			t.Errorf("ProfileName(%q, %q) = %q, want %q", tt.account, tt.role, got, tt.want)
		}
	}
}

var corp = Session{Name: "corp", StartURL: "https://corp.awsapps.com/start", Region: "eu-west-1"}

func profiles(names ...string) []Profile {
	var ps []Profile
	for i, n := range names {
		account, role, _ := strings.Cut(n, "/")
		ps = append(ps, Profile{Name: ProfileName(account, role), AccountID: strings.Repeat(string(rune('1'+i)), 12), RoleName: role, Region: "eu-west-1", Output: "json"})
	}
	return ps
}

// TestApplyGolden runs Apply on each testdata/apply/NAME.in and compares
// the file with NAME.golden (go test -update rewrites them).
func TestApplyGolden(t *testing.T) {
	tests := []struct {
		name    string
		desired Desired
		want    Changes
	}{
		{"empty", Desired{Session: corp, Profiles: profiles("payments-dev/ReadOnly", "payments-dev/AdministratorAccess")},
			Changes{Session: "added", Added: []string{"payments-dev-administratoraccess", "payments-dev-readonly"}}},
		{"user", Desired{Session: corp, Profiles: profiles("payments-dev/ReadOnly")},
			Changes{Session: "added", Added: []string{"payments-dev-readonly"}}},
		{"rerun", Desired{Session: corp, Profiles: []Profile{
			{Name: "payments-dev-readonly", AccountID: "111122223333", RoleName: "ReadOnly", Region: "eu-west-1", Output: "json"},
			{Name: "payments-prod-readonly", AccountID: "222233334444", RoleName: "ReadOnly", Region: "eu-west-1", Output: "json"},
		}}, Changes{Session: "unchanged", Added: []string{"payments-prod-readonly"}, Removed: []string{"old-account-admin"}, Unchanged: []string{"payments-dev-readonly"}}},
		{"rerun-region", Desired{Session: Session{Name: "corp", StartURL: "https://corp.awsapps.com/start", Region: "us-east-1"}, Profiles: []Profile{
			{Name: "payments-dev-readonly", AccountID: "111122223333", RoleName: "ReadOnly", Region: "us-east-1"},
		}}, Changes{Session: "updated", Updated: []string{"payments-dev-readonly"}, Removed: []string{"old-account-admin"}}},
		{"rerun-not-signed-in", Desired{Session: corp, KeepProfiles: true}, Changes{Session: "unchanged"}},
		{"crlf", Desired{Session: corp, Profiles: profiles("a/Admin")}, Changes{Session: "added", Added: []string{"a-admin"}}},
		{"nonewline", Desired{Session: corp, Profiles: profiles("a/Admin")}, Changes{Session: "added", Added: []string{"a-admin"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.name
			if strings.HasPrefix(in, "rerun") {
				in = "rerun"
			}
			data, err := os.ReadFile(filepath.Join("testdata", "apply", in+".in"))
			if err != nil {
				t.Fatal(err)
			}
			f, err := Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.Apply(tt.desired)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := changesString(got), changesString(tt.want); g != w {
				t.Errorf("changes = %s, want %s", g, w)
			}
			out := f.Bytes()
			golden.Check(t, "apply/"+tt.name+".golden", out)
			// Applying the same again changes nothing.
			f2, err := Parse(out)
			if err != nil {
				t.Fatal(err)
			}
			again, err := f2.Apply(tt.desired)
			if err != nil {
				t.Fatal(err)
			}
			if again.Any() || !bytes.Equal(f2.Bytes(), out) {
				t.Errorf("second Apply changed the file: %s\n%s", changesString(again), Diff("first", "second", out, f2.Bytes()))
			}
		})
	}
}

func changesString(c Changes) string {
	return "session " + c.Session + "; added " + strings.Join(c.Added, ",") + "; updated " + strings.Join(c.Updated, ",") +
		"; removed " + strings.Join(c.Removed, ",") + "; unchanged " + strings.Join(c.Unchanged, ",")
}

func TestApplyConflicts(t *testing.T) {
	tests := []struct {
		name, in string
		desired  Desired
		want     string
	}{
		{"a profile of the user's with berth's name", "[profile a-admin]\nregion = eu-west-1\n",
			Desired{Session: corp, Profiles: profiles("a/Admin")}, "[profile a-admin] is already in the file and berth did not write it"},
		{"a session block of the user's", "[sso-session corp]\nsso_start_url = https://x.awsapps.com/start\n",
			Desired{Session: corp}, "[sso-session corp] is already in the file"},
		{"a profile berth wrote for another session", "[profile a-admin]\n" + mark("other") + "\nsso_session = other\n",
			Desired{Session: corp, Profiles: profiles("a/Admin")}, "written by berth for session other"},
		{"two assignments with one name", "",
			Desired{Session: corp, Profiles: append(profiles("a/Admin"), Profile{Name: "a-admin", AccountID: "999999999999", RoleName: "ADMIN"})}, "two profiles would be called a-admin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.Apply(tt.desired)
			if !errors.Is(err, errkind.Conflict) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Apply = %v, want a conflict saying %q", err, tt.want)
			}
			if got := string(f.Bytes()); got != tt.in {
				t.Errorf("a refused Apply changed the file:\n%s", got)
			}
		})
	}
}

func TestApplyRefusesBadValues(t *testing.T) {
	tests := []struct {
		name string
		d    Desired
		want string
	}{
		{"session name", Desired{Session: Session{Name: "a b", StartURL: corp.StartURL, Region: "eu-west-1"}}, "session name"},
		{"start URL over http", Desired{Session: Session{Name: "corp", StartURL: "http://corp.awsapps.com/start", Region: "eu-west-1"}}, "--start-url"},
		{"start URL with a line break", Desired{Session: Session{Name: "corp", StartURL: "https://x\n[default]", Region: "eu-west-1"}}, "--start-url"},
		{"region", Desired{Session: Session{Name: "corp", StartURL: corp.StartURL, Region: "Europe"}}, "--sso-region"},
		{"account ID", Desired{Session: corp, Profiles: []Profile{{Name: "a-b", AccountID: "12", RoleName: "B"}}}, "not 12 digits"},
		{"permission set", Desired{Session: corp, Profiles: []Profile{{Name: "a-b", AccountID: "111122223333", RoleName: "B\nregion = x"}}}, "permission set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _ := Parse(nil)
			_, err := f.Apply(tt.d)
			if !errors.Is(err, errkind.Invalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Apply = %v, want invalid saying %q", err, tt.want)
			}
		})
	}
}

func TestDiff(t *testing.T) {
	old := "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n"
	new := "a\nB\nc\nd\ne\nf\ng\nh\ni\nj\nk\n"
	want := "--- old\n+++ new\n@@ -1,5 +1,5 @@\n a\n-b\n+B\n c\n d\n e\n@@ -8,3 +8,4 @@\n h\n i\n j\n+k\n"
	if got := Diff("old", "new", []byte(old), []byte(new)); got != want {
		t.Errorf("Diff =\n%s\nwant\n%s", got, want)
	}
	if got := Diff("old", "new", nil, []byte("x\n")); got != "--- old\n+++ new\n@@ -0,0 +1,1 @@\n+x\n" {
		t.Errorf("Diff from nothing = %q", got)
	}
	if got := Diff("old", "new", []byte(old), []byte(old)); got != "" {
		t.Errorf("Diff of equal files = %q", got)
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"user", "rerun", "crlf", "nonewline"} {
		data, err := os.ReadFile(filepath.Join("testdata", "apply", name+".in"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("[profile a-admin]\n" + mark("corp") + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("error of another kind: %v", err)
			}
			return
		}
		if got := file.Bytes(); !bytes.Equal(got, data) && !(len(data) == 0 && len(got) == 0) {
			t.Fatalf("Bytes() = %q, want the input %q", got, data)
		}
		d := Desired{Session: corp, Profiles: profiles("a/Admin", "b/ReadOnly")}
		if _, err := file.Apply(d); err != nil {
			if !errors.Is(err, errkind.Conflict) {
				t.Fatalf("Apply: %v", err)
			}
			if !bytes.Equal(file.Bytes(), data) {
				t.Fatal("a refused Apply changed the file")
			}
			return
		}
		out := file.Bytes()
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("berth wrote a file it cannot read: %v\n%q", err, out)
		}
		c, err := again.Apply(d)
		if err != nil || c.Any() {
			t.Fatalf("second Apply: %v, %+v\n%q", err, c, out)
		}
		for _, p := range []string{"profile a-admin", "profile b-readonly"} {
			if v, _ := again.Get(p, "sso_session"); v != "corp" {
				t.Fatalf("%s has sso_session %q after Apply\n%q", p, v, out)
			}
		}
	})
}
