package org_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/berth-dev/berth/org"
)

// FuzzReadPlan feeds arbitrary bytes to the plan file reader: no panic,
// a plan or an error but not both, and a plan it accepts passes Check and
// writes back to a file it reads the same.
func FuzzReadPlan(f *testing.F) {
	text, err := os.ReadFile("testdata/plan/catalog.yaml")
	if err != nil {
		f.Fatal(err)
	}
	golden, err := os.ReadFile("testdata/plan/plan.json")
	if err != nil {
		f.Fatal(err)
	}
	quoted := strings.ReplaceAll(strings.ReplaceAll(string(text), `\`, `\\`), `"`, `\"`)
	quoted = strings.ReplaceAll(quoted, "\n", `\n`)
	f.Add(bytes.Replace(golden, []byte(`"(omitted)"`), []byte(`"`+quoted+`"`), 1))
	f.Add(golden)
	f.Add([]byte(`{"version":1,"steps":[{"action":"close-account","account":"x","account_id":"1"}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"version":1}{"version":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, cat, err := org.ReadPlan(bytes.NewReader(data))
		if (p == nil) != (err != nil) || (p == nil) != (cat == nil) {
			t.Fatalf("plan %v, catalog %v and error %v", p, cat, err)
		}
		if err != nil {
			return
		}
		if err := p.Check(cat); err != nil {
			t.Fatalf("accepted a plan that Check refuses: %v", err)
		}
		var b bytes.Buffer
		if err := org.WritePlan(&b, p); err != nil {
			t.Fatal(err)
		}
		if _, _, err := org.ReadPlan(&b); err != nil {
			t.Fatalf("a plan written back does not read: %v", err)
		}
		_ = org.FormatPlan(&bytes.Buffer{}, p)
		_ = org.FormatMarkdown(&bytes.Buffer{}, p)
	})
}
