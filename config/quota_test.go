package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestQuotas(t *testing.T) {
	const regions = "regions:\n  - name: eu\n    store: s3://releases?region=eu-west-1\n"
	c, err := Parse("c.yaml", []byte(regions+"quotas:\n  - service: ec2\n    code: L-1216C47A\n    name: On-Demand vCPUs\n    value: 256\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Quota{Service: "ec2", Code: "L-1216C47A", Name: "On-Demand vCPUs", Value: 256}); len(c.Quotas) != 1 || c.Quotas[0] != want {
		t.Errorf("quotas %+v, want %+v", c.Quotas, want)
	}
	for _, tt := range []struct{ name, quotas, want string }{
		{"no service", "  - code: L-1216C47A\n    value: 1\n", "service"},
		{"bad code", "  - service: ec2\n    code: \"L 1\"\n    value: 1\n", "not a quota code"},
		{"zero", "  - service: ec2\n    code: L-1216C47A\n    value: 0\n", "positive"},
		{"negative", "  - service: ec2\n    code: L-1216C47A\n    value: -5\n", "positive"},
		{"infinite", "  - service: ec2\n    code: L-1216C47A\n    value: .inf\n", "positive"},
		{"not a number", "  - service: ec2\n    code: L-1216C47A\n    value: .nan\n", "positive"},
		{"twice", "  - {service: ec2, code: L-1216C47A, value: 1}\n  - {service: ec2, code: L-1216C47A, value: 2}\n", "listed twice"},
		{"unknown field", "  - {service: ec2, code: L-1216C47A, value: 1, desired: 3}\n", "desired"},
	} {
		_, err := Parse("c.yaml", []byte(regions+"quotas:\n"+tt.quotas))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want ErrInvalid saying %q", tt.name, err, tt.want)
		}
	}
}

// TestWriteKeepsQuotas: commands that rewrite the file (dataplane deploy)
// know nothing of the desired quotas and must not drop them.
func TestWriteKeepsQuotas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	regions := []Region{{Name: "eu", Store: "s3://releases?region=eu-west-1"}}
	q := []Quota{{Service: "ec2", Code: "L-1216C47A", Value: 256}}
	if err := Write(path, &Config{Regions: regions, Quotas: q}, true); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, &Config{Regions: regions, Prefix: "rel"}, true); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Quotas) != 1 || c.Quotas[0] != q[0] || c.Prefix != "rel" {
		t.Errorf("after a rewrite: %+v", c)
	}
}
