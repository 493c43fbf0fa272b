package dataplane

import (
	"fmt"

	"github.com/berth-dev/berth/deploy"
	"github.com/berth-dev/berth/errkind"
)

// Resume returns the deploy of plans made earlier, possibly by another
// process (the hub plans in one job and applies, after approval, in
// another): Apply executes exactly those change sets.
func (a *AWS) Resume(plans []*deploy.Plan) (*AWSDeploy, error) {
	p := &AWSDeploy{}
	for _, pl := range plans {
		if pl == nil || pl.Region == "" || pl.Stack != a.Target.StackName() {
			return nil, fmt.Errorf("resume deploy: a plan is not of stack %s in a region: %w", a.Target.StackName(), errkind.Invalid)
		}
		p.Regions = append(p.Regions, &RegionDeploy{Region: pl.Region, Plan: pl, d: a.deployer(pl.Region), stack: deploy.Stack{Name: pl.Stack}})
	}
	if len(p.Regions) == 0 {
		return nil, fmt.Errorf("resume deploy: no plans: %w", errkind.Invalid)
	}
	return p, nil
}
