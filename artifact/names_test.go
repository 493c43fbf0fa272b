package artifact

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValidateProject(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"myapp", true}, {"my-app_2.x", true}, {"a", true}, {strings.Repeat("a", 64), true},
		{"", false}, {"MyApp", false}, {"-app", false}, {".app", false}, {"a..b", false},
		{"a/b", false}, {"a b", false}, {strings.Repeat("a", 65), false}, {"ä", false},
	} {
		err := ValidateProject(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateProject(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateProject(%q): error is not ErrInvalid", tc.name)
		}
	}
}

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		v  string
		ok bool
	}{
		{"1.0.0", true}, {"0.0.1", true}, {"1.2.3-rc.1", true}, {"1.2.3-alpha-1.beta", true},
		{"1.2.3+build.5", true}, {"1.2.3-rc.1+sha.abc", true}, {"10.20.30", true},
		{"", false}, {"1.0", false}, {"v1.0.0", false}, {"01.0.0", false}, {"1.0.0-01", false},
		{"1.0.0-", false}, {"1.0.0+", false}, {"1.0.0-a..b", false}, {"1.0.0-a_b", false},
		{"latest", false}, {"1.0.0.0", false}, {"99999999999999999999.0.0", false}, {"1.0.0/x", false},
	} {
		_, err := ParseVersion(tc.v)
		if (err == nil) != tc.ok {
			t.Errorf("ParseVersion(%q) = %v, want ok=%v", tc.v, err, tc.ok)
		}
	}
}

func TestVersionOrder(t *testing.T) {
	// The precedence example of semver.org, section 11.
	want := []string{"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
		"1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0", "10.0.0"}
	for i := range want {
		for j := range want {
			c := CompareVersions(want[i], want[j])
			if (i < j && c >= 0) || (i > j && c <= 0) || (i == j && c != 0) {
				t.Errorf("compare(%s, %s) = %d", want[i], want[j], c)
			}
		}
	}
}

func TestValidateMetadata(t *testing.T) {
	for _, tc := range []struct {
		md map[string]string
		ok bool
	}{
		{map[string]string{"commit": "abc", "ci/job-id": "42", "x.y_z:w": "ü ok"}, true},
		{map[string]string{"berth:size": "1"}, false},
		{map[string]string{"BERTH:size": "1"}, false},
		{map[string]string{"": "1"}, false},
		{map[string]string{"-k": "1"}, false},
		{map[string]string{"k k": "1"}, false},
		{map[string]string{"k": "a\x00b"}, false},
		{map[string]string{"k": strings.Repeat("v", MaxMetadataValLen+1)}, false},
		{map[string]string{"k": "\xff"}, false},
	} {
		err := ValidateMetadata(tc.md)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateMetadata(%v) = %v, want ok=%v", tc.md, err, tc.ok)
		}
	}
	big := map[string]string{}
	for i := 0; i < MaxMetadataKeys+1; i++ {
		big[strings.Repeat("k", i+1)] = "v"
	}
	if ValidateMetadata(big) == nil {
		t.Error("too many keys accepted")
	}
}

func TestValidateFilename(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"app.tar.gz", true}, {"my app (1).zip", true}, {"..", false}, {".", false}, {"a/b", false},
		{"a\\b", false}, {"", false}, {"a\nb", false}, {strings.Repeat("a", 256), false},
	} {
		if err := ValidateFilename(tc.name); (err == nil) != tc.ok {
			t.Errorf("ValidateFilename(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"1.0.0", "1.2.3-rc.1+b", "v1.0.0", "01.0.0", "1.0.0-", "0.0.0-0.a.-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVersion(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error of the wrong kind: %v", err)
			}
			return
		}
		// Anything accepted is a safe key segment and orders consistently.
		if strings.ContainsAny(s, "/\\ \x00") || s == "." || s == ".." {
			t.Fatalf("accepted unsafe version %q", s)
		}
		if v.Compare(v) != 0 || v.String() != s {
			t.Fatalf("version %q does not equal itself", s)
		}
	})
}

func FuzzValidateProject(f *testing.F) {
	for _, s := range []string{"myapp", "a..b", "-x", "A"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateProject(s) != nil {
			return
		}
		if strings.ContainsAny(s, "/\\ ") || strings.Contains(s, "..") || len(s) > MaxProjectLen || !utf8.ValidString(s) {
			t.Fatalf("accepted unsafe project %q", s)
		}
	})
}

func FuzzParseMetadata(f *testing.F) {
	f.Add("commit=abc", "branch=main")
	f.Add("berth:x=1", "k")
	f.Fuzz(func(t *testing.T, a, b string) {
		md, err := ParseMetadata([]string{a, b})
		if err != nil {
			return
		}
		for k, v := range md {
			if strings.HasPrefix(strings.ToLower(k), ReservedPrefix) || !utf8.ValidString(v) || len(v) > MaxMetadataValLen {
				t.Fatalf("accepted %q=%q", k, v)
			}
		}
	})
}

func FuzzValidateFilename(f *testing.F) {
	f.Add("app.tgz")
	f.Add("../x")
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateFilename(s) == nil && (strings.ContainsAny(s, "/\\") || s == ".." || s == ".") {
			t.Fatalf("accepted unsafe file name %q", s)
		}
	})
}
