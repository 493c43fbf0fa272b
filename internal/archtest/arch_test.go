// Package archtest holds the layering rules of DESIGN.md as a test:
// dependencies point downwards.
package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/berth-dev/berth/"

// allowed lists, per package prefix, the project packages it may import.
var allowed = map[string][]string{
	"errkind":         {},
	"store":           {"errkind"},
	"store/storetest": {"store"},
	"store/filestore": {"store"},
	"store/s3store":   {"store", "internal/awserr"},
	"internal/awserr": {"errkind"},
	"pointer":         {"store", "internal/awserr"},
	"artifact":        {"store", "pointer"},
	"policy":          {"policy/iamdata"},
	"cfn":             {"policy"},
	"deploy":          {"internal/awserr", "errkind"},
	"dataplane":       {"errkind", "store", "internal/awserr", "internal/awsx", "internal/minioadmin", "policy", "cfn", "deploy"},
	"config":          {"artifact", "pointer", "store", "store/filestore", "store/s3store", "internal/awsx", "internal/awserr"},
	"org":             {"errkind", "internal/awserr"},
	"hub/secrets":     {"errkind"},
	"hub/db":          {"errkind", "access"}, // the access types its rows hold
	"hub/hubclient":   {"errkind"},
	"cache":           {"store", "errkind"},
	"hub":             {"errkind", "hub/db", "hub/secrets", "hub/web", "access", "artifact", "dataplane", "policy", "pointer", "store/s3store", "internal/awserr", "cfn", "deploy", "internal/awsx"},
	"hub/web":         {}, // a client of the hub's API over http.Handler: no project imports

	"internal/minioadmin": {},
}

func TestLayering(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module)
		rules, ok := allowed[pkg]
		if !ok {
			continue
		}
		checked++
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			dep := strings.TrimPrefix(imp, module)
			if !contains(rules, dep) {
				t.Errorf("%s imports %s; DESIGN.md lets it import only %v", pkg, dep, rules)
			}
		}
	}
	if checked < len(allowed) {
		t.Fatalf("checked %d packages of %d with rules; was one renamed?", checked, len(allowed))
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
