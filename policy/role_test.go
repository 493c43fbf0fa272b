package policy

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRole(t *testing.T) {
	p := renderCases["boundary"]
	prov, err := Render(KindProvisioner, p)
	if err != nil {
		t.Fatal(err)
	}
	p.Administrator = true
	admin, err := Render(KindProvisioner, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(prov.Role.Managed) < 2 {
		t.Fatalf("the provisioner has %d managed policies", len(prov.Role.Managed))
	}
	for _, c := range []struct {
		name     string
		data     string
		policies int
		managed  int
		boundary bool
		err      string
	}{
		{"rendered provisioner", string(prov.JSON()), len(prov.Role.Managed), 0, true, ""},
		{"rendered administrator", string(admin.JSON()), 0, 1, true, ""},
		{"yaml", "AssumeRolePolicyDocument:\n  Version: \"2012-10-17\"\n  Statement:\n    - Effect: Allow\n      Principal: {Service: ec2.amazonaws.com}\n      Action: sts:AssumeRole\nRoleName: x\n", 0, 0, false, ""},
		{"plain policy", `{"Version":"2012-10-17","Statement":[]}`, 0, 0, false, "not a role"},
		{"bad policies", `{"AssumeRolePolicyDocument":{"Version":"2012-10-17","Statement":[]},"Policies":{"PolicyName":"x"}}`, 0, 0, false, "expected a list"},
		{"bad managed policies", `{"AssumeRolePolicyDocument":{"Version":"2012-10-17","Statement":[]},"ManagedPolicies":[{"ManagedPolicyName":"x"}]}`, 0, 0, false, "expected {ManagedPolicyName, PolicyDocument}"},
		{"bad inline document", `{"AssumeRolePolicyDocument":{"Version":"2012-10-17","Statement":[]},"Policies":[{"PolicyName":"x","PolicyDocument":{"Statement":[{"Effect":"Maybe"}]}}]}`, 0, 0, false, "Policies[0].PolicyDocument"},
	} {
		r, err := ParseRole([]byte(c.data))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if r.Trust == nil || len(r.Policies) != c.policies || len(r.ManagedPolicyARNs) != c.managed || (r.PermissionsBoundary != "") != c.boundary {
			t.Errorf("%s: %+v", c.name, r)
		}
	}
	if _, err := ParseRole([]byte(`{"Version":"2012-10-17","Statement":[]}`)); !errors.Is(err, ErrNotRole) {
		t.Errorf("plain policy: %v, want ErrNotRole", err)
	}
}
