package cli

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printable escapes what a terminal would act on: control characters
// (escape sequences among them), bidirectional overrides and invalid UTF-8.
// Manifests, pointers and listed names come from the store, which anyone
// with write access to it controls.
func printable(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || isBidi(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i, w := 0, 0; i < len(s); i += w {
		r, n := utf8.DecodeRuneInString(s[i:])
		w = n
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x80 && unicode.IsControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unicode.IsControl(r) || isBidi(r) || r == utf8.RuneError:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isBidi(r rune) bool {
	return r == 0x200e || r == 0x200f || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// silenced keeps an error's exit code but not its message: JSON output
// already carries the details on stdout.
type silenced struct{ err error }

func (s silenced) Error() string   { return s.err.Error() }
func (s silenced) Unwrap() []error { return []error{errSilent, s.err} }

func silence(err error) error {
	if err == nil {
		return nil
	}
	return silenced{err}
}

// errSilent marks errors already reported on stdout.
var errSilent = errors.New("already reported")

// jsonResult prints res as the one JSON document and keeps err's exit code
// without printing err again: the document carries the details.
func (g *Globals) jsonResult(res any, err error) error {
	if perr := g.printJSON(res); perr != nil {
		return perr
	}
	return silence(err)
}
