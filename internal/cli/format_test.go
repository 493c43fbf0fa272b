package cli

import (
	"testing"
	"unicode"
)

func TestPrintable(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain 1.0.0", "plain 1.0.0"},
		{"grüße ✓", "grüße ✓"},
		{"clear\x1b[2Jscreen", `clear\x1b[2Jscreen`},
		{"title\x1b]0;owned\x07", `title\x1b]0;owned\x07`},
		{"tab\tnew\nline\rcr", `tab\tnew\nline\rcr`},
		{"c1 \u009b31m", `c1 \u009b31m`},
		{"bidi \u202eevil", `bidi \u202eevil`},
		{"bad \xff utf8", `bad \xff utf8`},
		{"del \x7f", `del \x7f`},
	}
	for _, tt := range tests {
		got := printable(tt.in)
		if got != tt.want {
			t.Errorf("printable(%q) = %q, want %q", tt.in, got, tt.want)
		}
		for _, r := range got {
			if unicode.IsControl(r) || isBidi(r) {
				t.Errorf("printable(%q) kept %q", tt.in, r)
			}
		}
	}
}

func FuzzPrintable(f *testing.F) {
	f.Add("clear\x1b[2J")
	f.Add("\xff\u202e\u009b")
	f.Fuzz(func(t *testing.T, s string) {
		for _, r := range printable(s) {
			if unicode.IsControl(r) || isBidi(r) {
				t.Fatalf("printable(%q) kept %q", s, r)
			}
		}
	})
}
