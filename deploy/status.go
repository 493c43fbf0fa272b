package deploy

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
)

// StackInfo is a deployed stack as DescribeStacks shows it.
type StackInfo struct {
	Name         string            `json:"name"`
	Region       string            `json:"region,omitempty"`
	ID           string            `json:"id"`
	Status       string            `json:"status"`
	StatusReason string            `json:"status_reason,omitempty"`
	Description  string            `json:"description,omitempty"`
	Outputs      map[string]string `json:"outputs"`
	Parameters   map[string]string `json:"parameters"` // NoEcho values come back as ****
	Tags         map[string]string `json:"tags"`
	Created      time.Time         `json:"created"`
	LastUpdated  *time.Time        `json:"last_updated,omitempty"` // nil when never updated
	DriftStatus  string            `json:"drift_status,omitempty"` // from the last drift detection
}

// Status describes the stack. A missing stack is an ErrStackNotFound error.
func (d *Deployer) Status(ctx context.Context, name string) (*StackInfo, error) {
	st, err := d.describe(ctx, name)
	if err != nil {
		return nil, d.fail("describe", name, err)
	}
	info := &StackInfo{
		Name:         aws.ToString(st.StackName),
		Region:       d.Region,
		ID:           aws.ToString(st.StackId),
		Status:       string(st.StackStatus),
		StatusReason: aws.ToString(st.StackStatusReason),
		Description:  aws.ToString(st.Description),
		Outputs:      map[string]string{},
		Parameters:   map[string]string{},
		Tags:         map[string]string{},
		Created:      aws.ToTime(st.CreationTime),
		LastUpdated:  st.LastUpdatedTime,
	}
	for _, o := range st.Outputs {
		info.Outputs[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
	}
	for _, p := range st.Parameters {
		info.Parameters[aws.ToString(p.ParameterKey)] = aws.ToString(p.ParameterValue)
	}
	for _, t := range st.Tags {
		info.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	if st.DriftInformation != nil {
		info.DriftStatus = string(st.DriftInformation.StackDriftStatus)
	}
	return info, nil
}

// Resource names one resource of a stack.
type Resource struct {
	LogicalID  string `json:"logical_id"`
	PhysicalID string `json:"physical_id,omitempty"`
	Type       string `json:"type"`
}

// DeleteResult says what a Delete did.
type DeleteResult struct {
	Stack   string `json:"stack"`
	Region  string `json:"region,omitempty"`
	StackID string `json:"stack_id,omitempty"`
	// NotFound: there was no such stack, so nothing was deleted.
	NotFound bool `json:"not_found"`
	// Retained are resources CloudFormation left in place: a DeletionPolicy
	// of Retain in the template, or the retain argument. Callers should say
	// so ("kept bucket X"): they still exist, and may still cost money.
	Retained []Resource `json:"retained"`
}

// Delete deletes the stack and waits until it is gone, printing events.
// Deleting a stack that doesn't exist succeeds with NotFound set.
//
// retain lists logical ids to keep, and CloudFormation accepts it only for
// a stack whose previous delete failed (DELETE_FAILED). For any other stack
// a non-empty retain is an error rather than ignored, since ignoring it
// would delete what the caller asked to keep; resources that must survive a
// normal delete need DeletionPolicy: Retain in the template.
func (d *Deployer) Delete(ctx context.Context, name string, retain []string) (*DeleteResult, error) {
	res := &DeleteResult{Stack: name, Region: d.Region, Retained: []Resource{}}
	st, err := d.describe(ctx, name)
	if isStackMissing(err) {
		res.NotFound = true
		return res, nil
	}
	if err != nil {
		return nil, d.fail("delete", name, err)
	}
	res.StackID = aws.ToString(st.StackId)
	if s := st.StackStatus; s != types.StackStatusDeleteInProgress && strings.HasSuffix(string(s), "_IN_PROGRESS") &&
		s != types.StackStatusReviewInProgress {
		return nil, fmt.Errorf("delete %s: another operation is running (%s); wait for it to finish", where(name, d.Region), s)
	}
	if len(retain) > 0 && st.StackStatus != types.StackStatusDeleteFailed {
		return nil, fmt.Errorf("delete %s: CloudFormation can only retain resources (%s) of a stack whose delete failed, and this one is %s; use DeletionPolicy: Retain in the template",
			where(name, d.Region), strings.Join(retain, ", "), st.StackStatus)
	}

	// Follow the stack by id: by name it vanishes the moment it is deleted.
	w, err := d.watchStack(ctx, name, res.StackID, st.StackStatus)
	if err != nil {
		return nil, d.fail("delete", name, err)
	}
	if st.StackStatus != types.StackStatusDeleteInProgress {
		_, err = d.CFN.DeleteStack(ctx, &cloudformation.DeleteStackInput{StackName: st.StackId, RetainResources: retain})
		if err != nil {
			return nil, d.fail("delete", name, err)
		}
	}
	st, err = d.wait(ctx, "delete", w)
	if err != nil {
		return nil, err
	}
	if st.StackStatus != types.StackStatusDeleteComplete {
		return nil, w.failed("delete", d.Region, st)
	}
	for _, e := range w.events {
		if e.Status == string(types.ResourceStatusDeleteSkipped) && !w.isStack(e) {
			res.Retained = append(res.Retained, Resource{LogicalID: e.LogicalID, PhysicalID: e.PhysicalID, Type: e.Type})
		}
	}
	return res, nil
}
