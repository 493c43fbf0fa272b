package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode"
)

func TestParseStore(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want Store
		err  string
	}{
		{url: "file:///srv/berth", want: Store{Scheme: "file", Dir: "/srv/berth"}},
		{url: "s3://my-bucket?region=eu-west-1", want: Store{Scheme: "s3", Bucket: "my-bucket", Region: "eu-west-1"}},
		{url: "s3://b.example?region=us-east-1&endpoint=http://127.0.0.1:9000&path_style=true",
			want: Store{Scheme: "s3", Bucket: "b.example", Region: "us-east-1", Endpoint: "http://127.0.0.1:9000", PathStyle: true}},
		{url: "s3://?region=eu-west-1&bucket_parameter=/berth/bucket",
			want: Store{Scheme: "s3", Region: "eu-west-1", BucketParameter: "/berth/bucket"}},
		{url: "file://relative/dir", err: "three slashes"},
		{url: "file:///dir?x=1", err: "absolute directory"},
		{url: "s3://Bad_Bucket?region=eu-west-1", err: "not a valid bucket name"},
		{url: "s3://bucket/prefix?region=eu-west-1", err: "prefix setting"},
		{url: "s3://bucket?region=eu-west-1&colour=red", err: "unknown option"},
		{url: "s3://?region=eu-west-1", err: "name a bucket"},
		{url: "s3://?bucket_parameter=/x", err: "needs region"},
		{url: "s3://bucket?region=EU", err: "not a region name"},
		{url: "s3://bucket?endpoint=ftp://x", err: "http(s) URL"},
		{url: "s3://bucket?path_style=yes", err: "true or false"},
		{url: "gs://bucket", err: "unknown scheme"},
		{url: "/just/a/path", err: "no scheme"},
		{url: "file:///", err: "filesystem root"},
		{url: "file:///..", err: "filesystem root"},
		{url: "file://localhost/", err: "filesystem root"},
	} {
		got, err := ParseStore(tc.url)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrInvalid) {
				t.Errorf("ParseStore(%q) = %v, want error containing %q", tc.url, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseStore(%q) = %+v, %v; want %+v", tc.url, got, err, tc.want)
		}
	}
}

func TestResolvePrecedence(t *testing.T) {
	file := &Config{Prefix: "file", Regions: []Region{{Name: "f", Store: "file:///f"}}}
	env := map[string]string{}
	get := func(k string) string { return env[k] }

	c, err := Resolve(file, get, Overrides{})
	if err != nil || c.Prefix != "file" || c.Regions[0].Name != "f" {
		t.Fatalf("file only: %+v %v", c, err)
	}
	env["BERTH_STORES"] = "e1=file:///e1,e2=file:///e2"
	env["BERTH_PREFIX"] = "env"
	c, _ = Resolve(file, get, Overrides{})
	if c.Prefix != "env" || len(c.Regions) != 2 || c.Regions[1].Name != "e2" {
		t.Fatalf("env over file: %+v", c)
	}
	p := "flag"
	c, _ = Resolve(file, get, Overrides{Stores: []string{"x=file:///x"}, Prefix: &p})
	if c.Prefix != "flag" || len(c.Regions) != 1 || c.Regions[0].Name != "x" {
		t.Fatalf("flags over env: %+v", c)
	}
	if file.Prefix != "file" || len(file.Regions) != 1 {
		t.Fatal("Resolve changed its input")
	}
	c, _ = Resolve(nil, func(string) string { return "" }, Overrides{})
	if len(c.Regions) != 0 {
		t.Fatal("defaults invented regions")
	}
}

func TestWriteLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "config.yaml")
	c := &Config{Prefix: "releases", Pointers: "ssm:/berth/releases", Regions: []Region{
		{Name: "eu-west-1", Store: "s3://bucket-1?region=eu-west-1"}, {Name: "local", Store: "file:///srv"}}}
	if err := Write(path, c, false); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Prefix != c.Prefix || got.Pointers != c.Pointers || len(got.Regions) != 2 || got.Regions[1] != c.Regions[1] {
		t.Fatalf("round trip: %+v", got)
	}
	if err := Write(path, c, false); !errors.Is(err, os.ErrExist) {
		t.Fatalf("overwrite without force: %v", err)
	}
	bad := &Config{Regions: []Region{{Name: "a", Store: "file:///a"}, {Name: "a", Store: "file:///b"}}}
	if err := Write(path, bad, true); !errors.Is(err, ErrInvalid) {
		t.Fatalf("duplicate regions: %v", err)
	}
	if again, _ := Load(path); again == nil || again.Prefix != "releases" {
		t.Fatal("a rejected write changed the file")
	}
}

func TestParseRejects(t *testing.T) {
	for _, doc := range []string{
		"regions: []",
		"regions:\n  - name: a\n    store: file:///a\n    extra: 1",
		"regions:\n  - name: a\n    store: file:///a\nprefix: /abs",
		"regions:\n  - name: a\n    store: file:///a\npointers: dynamo",
		"regions: [",
	} {
		if _, err := Parse("test.yaml", []byte(doc)); !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q) = %v, want ErrInvalid", doc, err)
		}
	}
}

func FuzzParseStore(f *testing.F) {
	for _, s := range []string{"file:///srv", "s3://b?region=eu-west-1", "s3://?region=x&bucket_parameter=/p", "s3://b?endpoint=http://h:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, err := ParseStore(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error of the wrong kind: %v", err)
			}
			checkEcho(t, err)
			return
		}
		if st.Scheme == "file" && !filepath.IsAbs(st.Dir) {
			t.Fatalf("relative file store %q accepted", s)
		}
		if st.Scheme == "s3" && st.Bucket == "" && st.BucketParameter == "" {
			t.Fatalf("s3 store without bucket accepted: %q", s)
		}
	})
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("prefix: r\nregions:\n  - name: a\n    store: file:///a\n"))
	f.Add([]byte("regions: [{name: b, store: 's3://b?region=eu-west-1'}]\npointers: ssm:/x"))
	f.Add([]byte("regions: [{name: \"\\e[31m\", store: \"file:///\\x07\"}]\ntrusted_dirs: [\"~/x\"]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error of the wrong kind: %v", err)
			}
			checkEcho(t, err)
			return
		}
		if (len(c.Regions) == 0 && len(c.TrustedDirs) == 0) || strings.HasPrefix(c.Prefix, "/") {
			t.Fatalf("accepted %+v", c)
		}
	})
}

// checkEcho: an error message repeats what it was given only in a bounded,
// escaped form, whatever the input.
func checkEcho(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	if len(msg) > 600 {
		t.Fatalf("error message of %d bytes: %.200s...", len(msg), msg)
	}
	for _, r := range msg {
		if unicode.IsControl(r) {
			t.Fatalf("control character %U in error message %q", r, msg)
		}
	}
}

func TestErrorsEchoBoundedValues(t *testing.T) {
	long := strings.Repeat("a", 100_000)
	for _, doc := range []string{
		"regions:\n  - name: " + long + "\n    store: file:///a\n",
		"regions:\n  - name: a\n    store: \"file:///a\\x1b[2J\\x1b]0;pwned\\x07" + long + "\"\n",
		"regions:\n  - name: a\n    store: \"s3://b?region=eu-west-1&endpoint=" + long + "\"\n",
		"regions:\n  - name: a\n    store: \"s3://b:" + long + "\"\n",
		"regions:\n  - name: a\n    store: file:///a\npointers: \"\\e]52;c;" + long + "\"\n",
		"regions:\n  - name: a\n    store: file:///a\nprefix: \"/\\u0007" + long + "\"\n",
		"regions: " + long + "\x00\x1b[31m",
		"\x1b[31m: 1\n" + long,
		"regions:\n  - name: a\n    store: file:///a\ntrusted_dirs: [\"rel\\x1b" + long + "\"]\n",
	} {
		_, err := Parse("test.yaml", []byte(doc))
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%.40q...) = %v, want ErrInvalid", doc, err)
			continue
		}
		checkEcho(t, err)
		if strings.Contains(err.Error(), long[:200]) {
			t.Errorf("the long value is echoed whole: %.120s", err)
		}
	}
	_, err := ParseRegionFlag("a=s3://" + long + "\x1b[2J")
	if err == nil || !strings.Contains(err.Error(), "(100009 bytes)") {
		t.Errorf("a long --store value: %v", err)
	}
	checkEcho(t, err)
}

func TestLoadCaps(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	doc := "regions:\n  - name: a\n    store: file:///a\n# " + strings.Repeat("x", MaxFileSize) + "\n"
	if err := os.WriteFile(big, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "larger than 1024 KiB") {
		t.Errorf("Load of a %d-byte file: %v, want a size error", len(doc), err)
	}
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := Load(fifo); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "no regions configured") {
			t.Errorf("Load of a FIFO nobody writes: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Load of a FIFO nobody writes hangs")
	}
	if _, err := Load("/dev/zero"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Load of an endless device: %v", err)
	}
	if _, err := Load(dir); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("Load of a directory: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want ErrNotExist", err)
	}
}

func TestFind(t *testing.T) {
	const (
		user  = "regions:\n  - name: user\n    store: file:///user\n"
		local = "regions:\n  - name: checkout\n    store: s3://evil?region=eu-west-1&endpoint=https://evil.example\n"
	)
	for _, tc := range []struct {
		name        string
		user, local string // "" when absent
		trust       string // a trusted_dirs entry; DIR and LINK are replaced
		want        string // region read, "" for none
		ignored     bool
	}{
		{name: "user only", user: user, want: "user"},
		{name: "nothing", want: ""},
		{name: "untrusted checkout", user: user, local: local, want: "user", ignored: true},
		{name: "untrusted checkout, no user file", local: local, want: "", ignored: true},
		{name: "other directory trusted", user: user, local: local, trust: "/elsewhere", want: "user", ignored: true},
		{name: "trusted", user: user, local: local, trust: "DIR", want: "checkout"},
		{name: "trusted through a link", user: user, local: local, trust: "LINK", want: "checkout"},
		{name: "trusted by ~", user: user, local: local, trust: "~/work", want: "checkout"},
		{name: "trusted, user file only lists it", user: "", local: local, trust: "DIR", want: "checkout"},
		{name: "trusted parent does not trust children", user: user, local: local, trust: "~", want: "user", ignored: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			home := filepath.Join(base, "home")
			work := filepath.Join(home, "work")
			os.MkdirAll(work, 0o755)
			os.Symlink(work, filepath.Join(base, "link"))
			env := map[string]string{"HOME": home, "XDG_CONFIG_HOME": filepath.Join(base, "config")}
			get := func(k string) string { return env[k] }
			userDoc := tc.user
			if tc.trust != "" {
				tr := strings.NewReplacer("DIR", work, "LINK", filepath.Join(base, "link")).Replace(tc.trust)
				userDoc += "trusted_dirs: [\"" + tr + "\"]\n"
			}
			if userDoc != "" {
				os.MkdirAll(filepath.Join(base, "config", "berth"), 0o755)
				os.WriteFile(DefaultPath(get), []byte(userDoc), 0o644)
			}
			if tc.local != "" {
				os.WriteFile(filepath.Join(work, LocalName), []byte(tc.local), 0o644)
			}
			f, err := Find(get, work)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if f.Config != nil && len(f.Config.Regions) > 0 {
				got = f.Config.Regions[0].Name
			}
			if got != tc.want || (f.Ignored != "") != tc.ignored || f.Local != (tc.want == "checkout") {
				t.Fatalf("Find = %+v (regions from %q); want %q, ignored %v", f, got, tc.want, tc.ignored)
			}
			if tc.ignored && f.Ignored != filepath.Join(work, LocalName) {
				t.Fatalf("Ignored = %q", f.Ignored)
			}
		})
	}
}

func TestTrustedDirsMustBeAbsolute(t *testing.T) {
	_, err := Parse("c.yaml", []byte("trusted_dirs: [src/app]\n"))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "absolute directory") {
		t.Fatalf("relative trusted dir: %v", err)
	}
	c, err := Parse("c.yaml", []byte("trusted_dirs: [/src/app, ~/app]\n"))
	if err != nil || len(c.Regions) != 0 {
		t.Fatalf("a file with only trusted_dirs: %+v, %v", c, err)
	}
}

func TestWriteKeepsTrustedDirs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte("trusted_dirs: [/src/app]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &Config{Regions: []Region{{Name: "a", Store: "file:///a"}}}
	if err := Write(path, c, true); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil || len(got.Regions) != 1 || len(got.TrustedDirs) != 1 || got.TrustedDirs[0] != "/src/app" {
		t.Fatalf("after rewrite: %+v, %v", got, err)
	}
	if c.TrustedDirs != nil {
		t.Fatal("Write changed its input")
	}
}
