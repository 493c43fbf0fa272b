package hub_test

import (
	"context"
	"strings"
	"testing"

	"github.com/berth-dev/berth/hub"
	"github.com/berth-dev/berth/internal/awsfake"
	"github.com/berth-dev/berth/internal/awsx"
)

func TestCheckAWSPrincipal(t *testing.T) {
	fake := awsfake.New(t)
	fake.Setenv(t, "eu-west-1")
	cfg, err := awsx.Load(context.Background(), awsx.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		caller, principal string
		ok                bool
	}{
		{"arn:aws:sts::999988887777:assumed-role/berth-hub/i-0abc", "arn:aws:iam::999988887777:role/berth-hub", true},
		{"arn:aws:sts::999988887777:assumed-role/berth-hub/i-0abc", "arn:aws:iam::999988887777:role/platform/berth-hub", true},
		{"arn:aws:iam::999988887777:user/hub", "arn:aws:iam::999988887777:user/hub", true},
		{"arn:aws:sts::999988887777:assumed-role/other/i-0abc", "arn:aws:iam::999988887777:role/berth-hub", false},
		{"arn:aws:sts::111122223333:assumed-role/berth-hub/i-0abc", "arn:aws:iam::999988887777:role/berth-hub", false},
		{"arn:aws:iam::999988887777:user/hub", "arn:aws:iam::999988887777:role/hub", false},
	} {
		fake.Handle("sts", "GetCallerIdentity", awsfake.CallerIdentity(strings.Split(c.caller, ":")[4], c.caller))
		warning, err := hub.CheckAWSPrincipal(context.Background(), cfg, c.principal)
		if err != nil || (warning == "") != c.ok || !c.ok && !strings.Contains(warning, c.caller) {
			t.Errorf("%s as %s: %q, %v", c.caller, c.principal, warning, err)
		}
	}
	fake.Handle("sts", "GetCallerIdentity", awsfake.Error(403, "ExpiredToken", "The security token included in the request is expired"))
	if _, err := hub.CheckAWSPrincipal(context.Background(), cfg, "arn:aws:iam::999988887777:role/berth-hub"); err == nil || !strings.Contains(err.Error(), "the hub's AWS credentials") {
		t.Errorf("expired credentials: %v", err)
	}
}
