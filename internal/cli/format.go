package cli

import (
	"errors"
	"fmt"
	"sort"
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
