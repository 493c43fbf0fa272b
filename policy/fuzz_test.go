package policy

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func seedCorpus(f *testing.F) {
	files, _ := filepath.Glob("testdata/lint/*")
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	for _, p := range renderCases {
		for _, k := range Kinds {
			if r, err := Render(k, p); err == nil {
				f.Add(r.JSON())
			}
		}
	}
}

// FuzzParsePolicy: Parse never panics, and what it accepts renders to JSON
// that parses back to the same rendering.
func FuzzParsePolicy(f *testing.F) {
	seedCorpus(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse(data)
		if err != nil {
			return
		}
		out := d.JSON()
		d2, err := Parse(out)
		if err != nil {
			t.Fatalf("rendered policy does not parse: %v\n%s", err, out)
		}
		if !bytes.Equal(d2.JSON(), out) {
			t.Fatalf("render is not stable:\n%s\n%s", out, d2.JSON())
		}
	})
}

// FuzzLint: the linter (policies, roles and templates) never panics and
// never fails on bad input; bad input is a finding.
func FuzzLint(f *testing.F) {
	seedCorpus(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := Lint("fuzz", data); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzParseRole: ParseRole never panics; a role it accepts has a trust
// policy that renders and parses back.
func FuzzParseRole(f *testing.F) {
	seedCorpus(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRole(data)
		if err != nil {
			return
		}
		if r.Trust == nil {
			t.Fatal("role without trust policy accepted")
		}
		if _, err := Parse(r.Trust.JSON()); err != nil {
			t.Fatalf("trust policy does not parse back: %v", err)
		}
	})
}
