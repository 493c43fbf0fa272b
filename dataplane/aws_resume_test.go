package dataplane_test

import (
	"errors"
	"testing"

	"github.com/berth-dev/berth/dataplane"
	"github.com/berth-dev/berth/deploy"
	"github.com/berth-dev/berth/errkind"
)

func TestResume(t *testing.T) {
	a := &dataplane.AWS{Target: dataplane.AWSTarget{Account: "111122223333", Regions: []string{"eu-west-1", "us-east-1"}, Qualifier: "acme"}}
	good := []*deploy.Plan{{Stack: "acme-dataplane", Region: "eu-west-1", ChangeSetID: "cs-1"}, {Stack: "acme-dataplane", Region: "us-east-1", ChangeSetID: "cs-2"}}
	p, err := a.Resume(good)
	if err != nil || len(p.Regions) != 2 || p.Regions[1].Region != "us-east-1" || p.Regions[1].Plan.ChangeSetID != "cs-2" {
		t.Fatalf("Resume = %+v, %v", p, err)
	}
	for name, plans := range map[string][]*deploy.Plan{
		"none":           nil,
		"nil plan":       {nil},
		"other stack":    {{Stack: "berth-dataplane", Region: "eu-west-1"}},
		"no region":      {{Stack: "acme-dataplane"}},
		"one bad of two": {good[0], {Stack: "other", Region: "us-east-1"}},
	} {
		if _, err := a.Resume(plans); !errors.Is(err, errkind.Invalid) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
}
