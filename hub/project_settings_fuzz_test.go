package hub

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// validDescription returns plain text within the bound, and is stable: a
// stored description passes again unchanged.
func FuzzDescription(f *testing.F) {
	for _, s := range []string{"", "Release builds.\r\nOwned by us.", " \t x \n", "a\x00b", "safe\u202Eexe", "\xff", strings.Repeat("é", 2001)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := validDescription(in)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "description: ") {
				t.Fatalf("error %q does not name the field", err)
			}
			return
		}
		if !utf8.ValidString(got) || utf8.RuneCountInString(got) > maxDescription || strings.Contains(got, "\r\n") {
			t.Fatalf("validDescription(%q) = %q: not plain bounded text", in, got)
		}
		for _, c := range got {
			if c != '\n' && c != '\t' && (unicode.IsControl(c) || unicode.Is(unicode.Bidi_Control, c)) {
				t.Fatalf("validDescription(%q) kept %U", in, c)
			}
		}
		if again, err := validDescription(got); err != nil || again != got {
			t.Fatalf("a stored description %q does not pass again: %q, %v", got, again, err)
		}
	})
}

// parseTrustedKeys accepts only keys that read back as themselves.
func FuzzTrustedKeys(f *testing.F) {
	f.Add("RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3", "untrusted comment: minisign public key\nRWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3")
	f.Add("RWQ", "")
	f.Fuzz(func(t *testing.T, a, b string) {
		keys, err := parseTrustedKeys([]string{a, b})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "trusted_keys: ") {
				t.Fatalf("error %q does not name the field", err)
			}
			return
		}
		for _, k := range keys {
			again, err := parseTrustedKeys([]string{k.String()})
			if err != nil || again[0].ID() != k.ID() || again[0].String() != k.String() {
				t.Fatalf("key %s does not read back: %v", k, err)
			}
		}
	})
}
