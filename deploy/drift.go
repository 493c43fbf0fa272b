package deploy

import (
	"context"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
)

// DriftReport compares a stack's resources with its template.
type DriftReport struct {
	Stack  string `json:"stack"`
	Region string `json:"region,omitempty"`
	// Status is DRIFTED, IN_SYNC, NOT_CHECKED or UNKNOWN.
	Status string `json:"status"`
	// DetectionStatus is DETECTION_COMPLETE, or DETECTION_FAILED when some
	// resources could not be checked (Reason says why); the report still
	// holds what was checked.
	DetectionStatus string          `json:"detection_status"`
	Reason          string          `json:"reason,omitempty"`
	Drifted         int             `json:"drifted"` // resources MODIFIED or DELETED
	Resources       []ResourceDrift `json:"resources"`
}

// ResourceDrift is one resource of a drift report.
type ResourceDrift struct {
	LogicalID  string `json:"logical_id"`
	PhysicalID string `json:"physical_id,omitempty"`
	Type       string `json:"type"`
	// Status is MODIFIED, DELETED, IN_SYNC or NOT_CHECKED.
	Status      string               `json:"status"`
	Differences []PropertyDifference `json:"differences,omitempty"`
}

// PropertyDifference is one property that differs from the template.
type PropertyDifference struct {
	Path     string `json:"path"` // e.g. /VersioningConfiguration/Status
	Expected string `json:"expected"`
	Actual   string `json:"actual"`
	Type     string `json:"type"` // ADD, REMOVE or NOT_EQUAL
}

// Drift runs drift detection on the stack, waits for it and reports every
// resource, drifted or not.
func (d *Deployer) Drift(ctx context.Context, name string) (*DriftReport, error) {
	out, err := d.CFN.DetectStackDrift(ctx, &cloudformation.DetectStackDriftInput{StackName: aws.String(name)})
	if err != nil {
		return nil, d.fail("detect drift in", name, err)
	}
	var st *cloudformation.DescribeStackDriftDetectionStatusOutput
	for {
		if err := d.sleep(ctx); err != nil {
			return nil, fmt.Errorf("detect drift in %s: %w", where(name, d.Region), err)
		}
		st, err = d.CFN.DescribeStackDriftDetectionStatus(ctx, &cloudformation.DescribeStackDriftDetectionStatusInput{
			StackDriftDetectionId: out.StackDriftDetectionId,
		})
		if err != nil {
			return nil, d.fail("detect drift in", name, err)
		}
		if st.DetectionStatus != types.StackDriftDetectionStatusDetectionInProgress {
			break
		}
	}
	r := &DriftReport{
		Stack: name, Region: d.Region,
		Status:          string(st.StackDriftStatus),
		DetectionStatus: string(st.DetectionStatus),
		Reason:          aws.ToString(st.DetectionStatusReason),
		Resources:       []ResourceDrift{},
	}
	in := &cloudformation.DescribeStackResourceDriftsInput{StackName: aws.String(name)}
	for {
		page, err := d.CFN.DescribeStackResourceDrifts(ctx, in)
		if err != nil {
			return nil, d.fail("detect drift in", name, err)
		}
		for _, rd := range page.StackResourceDrifts {
			r.Resources = append(r.Resources, resourceDrift(rd))
		}
		if aws.ToString(page.NextToken) == "" {
			break
		}
		in.NextToken = page.NextToken
	}
	sort.SliceStable(r.Resources, func(i, j int) bool { return r.Resources[i].LogicalID < r.Resources[j].LogicalID })
	for _, rd := range r.Resources {
		if rd.Status == string(types.StackResourceDriftStatusModified) || rd.Status == string(types.StackResourceDriftStatusDeleted) {
			r.Drifted++
		}
	}
	return r, nil
}

func resourceDrift(rd types.StackResourceDrift) ResourceDrift {
	r := ResourceDrift{
		LogicalID:  aws.ToString(rd.LogicalResourceId),
		PhysicalID: aws.ToString(rd.PhysicalResourceId),
		Type:       aws.ToString(rd.ResourceType),
		Status:     string(rd.StackResourceDriftStatus),
	}
	for _, pd := range rd.PropertyDifferences {
		r.Differences = append(r.Differences, PropertyDifference{
			Path:     aws.ToString(pd.PropertyPath),
			Expected: aws.ToString(pd.ExpectedValue),
			Actual:   aws.ToString(pd.ActualValue),
			Type:     string(pd.DifferenceType),
		})
	}
	return r
}
