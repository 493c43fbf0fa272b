package org_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/org"
)

// FuzzParse feeds arbitrary bytes to the parser and validator: they must
// not panic or hang, must return a catalog or an error but not both, and
// every catalog error must point at a line and column inside the file.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/bad/*.yaml")
	seeds = append(seeds, "../examples/accounts.yaml")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("version: 1\naccess_classes: {team-prod: {escalations: [{permission_set: A, eligible: a, approvers: b, max_duration: 1h}]}}\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := org.Parse("f.yaml", data)
		if (c == nil) == (err == nil) {
			t.Fatalf("catalog %v and error %v", c, err)
		}
		var es org.Errors
		var se *org.SyntaxError
		switch {
		case err == nil:
			if c.Version != 1 {
				t.Fatalf("valid catalog with version %d", c.Version)
			}
			for _, a := range c.Accounts {
				if a.Name == "" || a.Email == "" || a.Budget.Amount <= 0 || (a.Budget.Amount > org.DefaultBudget && a.Budget.Approval == nil) {
					t.Fatalf("valid catalog with a bad account: %+v", a)
				}
			}
			for class, ac := range c.AccessClasses {
				if org.Production(class) && len(ac.Standing) > 0 {
					t.Fatalf("valid catalog with standing access to %s", class)
				}
			}
		case errors.As(err, &es):
			if len(es) == 0 {
				t.Fatal("empty Errors")
			}
			// YAML breaks lines at \r\n, \r, \n and the Unicode
			// line breaks, so a lone \r starts a line too.
			text := strings.ReplaceAll(string(data), "\r\n", "\n")
			lines := 1 + strings.Count(text, "\n") + strings.Count(text, "\r") +
				strings.Count(text, "\u0085") + strings.Count(text, "\u2028") + strings.Count(text, "\u2029")
			for _, e := range es {
				if e.Line < 1 || e.Column < 1 || e.Line > lines || e.Message == "" {
					t.Fatalf("error outside the file (%d lines): %s", lines, e)
				}
			}
		case errors.As(err, &se):
		default:
			t.Fatalf("unexpected error type %T: %v", err, err)
		}
	})
}
