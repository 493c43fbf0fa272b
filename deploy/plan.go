package deploy

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/smithy-go"
)

// Plan is a change set that CloudFormation has computed and not executed.
type Plan struct {
	Stack       string `json:"stack"`
	Region      string `json:"region,omitempty"`
	StackID     string `json:"stack_id,omitempty"`
	ChangeSetID string `json:"change_set_id,omitempty"`
	// Type is CREATE for a new stack and UPDATE for an existing one.
	Type string `json:"type"`
	// NoChanges: the template and parameters match the deployed stack. The
	// change set is already deleted; Apply only reads the outputs.
	NoChanges bool     `json:"no_changes"`
	Changes   []Change `json:"changes"`
}

// Change is one resource in a plan.
type Change struct {
	Action     string `json:"action"` // Add, Modify, Remove, Import, Dynamic
	LogicalID  string `json:"logical_id"`
	PhysicalID string `json:"physical_id,omitempty"`
	Type       string `json:"type"`
	// Replacement is True, False or Conditional for Modify: True means the
	// resource is deleted and created again, with a new physical id.
	Replacement string   `json:"replacement,omitempty"`
	Scope       []string `json:"scope,omitempty"` // Properties, Metadata, Tags, ...
	// PolicyAction is what happens to the resource itself for Remove and
	// replacement: Delete, Retain, Snapshot, ReplaceAndDelete, ...
	PolicyAction string         `json:"policy_action,omitempty"`
	Details      []ChangeDetail `json:"details,omitempty"`
}

// ChangeDetail is one attribute of a modified resource.
type ChangeDetail struct {
	Attribute string `json:"attribute"`      // Properties, Tags, ...
	Name      string `json:"name,omitempty"` // property name
	// RequiresRecreation is Never, Conditionally or Always.
	RequiresRecreation string `json:"requires_recreation,omitempty"`
	Source             string `json:"source,omitempty"` // DirectModification, ParameterReference, ...
	CausingEntity      string `json:"causing_entity,omitempty"`
	Before             string `json:"before,omitempty"`
	After              string `json:"after,omitempty"`
}

// Plan creates a change set for s and waits until CloudFormation has
// computed it. A stack that doesn't exist yet, or exists only as the empty
// shell a previous create change set left (REVIEW_IN_PROGRESS), gets a CREATE
// change set; any other an UPDATE one. Nothing changes until Apply.
func (d *Deployer) Plan(ctx context.Context, s Stack) (*Plan, error) {
	if s.Name == "" {
		return nil, fmt.Errorf("plan stack: the stack name is empty")
	}
	p := &Plan{Stack: s.Name, Region: d.Region, Type: string(types.ChangeSetTypeUpdate)}
	st, err := d.describe(ctx, s.Name)
	switch {
	case isStackMissing(err):
		p.Type = string(types.ChangeSetTypeCreate)
	case err != nil:
		return nil, d.fail("plan", s.Name, err)
	case st.StackStatus == types.StackStatusReviewInProgress:
		p.Type = string(types.ChangeSetTypeCreate)
	case st.StackStatus == types.StackStatusRollbackComplete || st.StackStatus == types.StackStatusRollbackFailed:
		// CloudFormation refuses to update a stack whose first create failed.
		return nil, fmt.Errorf("plan %s: the stack is %s after a failed create; delete it and deploy again",
			where(s.Name, d.Region), st.StackStatus)
	case strings.HasSuffix(string(st.StackStatus), "_IN_PROGRESS"):
		return nil, fmt.Errorf("plan %s: another operation is running (%s); wait for it to finish",
			where(s.Name, d.Region), st.StackStatus)
	}

	in := &cloudformation.CreateChangeSetInput{
		StackName: aws.String(s.Name),
		// Change set names must start with a letter and may hold letters,
		// digits and hyphens; the time keeps them unique and readable.
		ChangeSetName: aws.String("berth-" + strings.ReplaceAll(time.Now().UTC().Format("20060102-150405.000000"), ".", "-")),
		ChangeSetType: types.ChangeSetType(p.Type),
		TemplateBody:  aws.String(s.TemplateBody),
		Description:   aws.String("created by berth"),
	}
	for _, k := range sortedKeys(s.Parameters) {
		in.Parameters = append(in.Parameters, types.Parameter{ParameterKey: aws.String(k), ParameterValue: aws.String(s.Parameters[k])})
	}
	for _, k := range sortedKeys(s.Tags) {
		in.Tags = append(in.Tags, types.Tag{Key: aws.String(k), Value: aws.String(s.Tags[k])})
	}
	for _, c := range s.Capabilities {
		in.Capabilities = append(in.Capabilities, types.Capability(c))
	}
	out, err := d.CFN.CreateChangeSet(ctx, in)
	if err != nil {
		return nil, d.fail("plan", s.Name, err)
	}
	p.ChangeSetID = aws.ToString(out.Id)
	p.StackID = aws.ToString(out.StackId)

	cs, err := d.waitChangeSet(ctx, p)
	if err != nil {
		return nil, err
	}
	if cs.Status == types.ChangeSetStatusFailed {
		reason := aws.ToString(cs.StatusReason)
		// Best effort: a failed change set is useless, and a failed create
		// leaves an empty REVIEW_IN_PROGRESS stack behind. The reason for
		// the failure matters more than a failed clean-up.
		cleanupErr := d.Discard(ctx, p)
		if isNoChanges(reason) {
			if cleanupErr != nil {
				return nil, cleanupErr
			}
			p.NoChanges = true
			p.Changes = []Change{}
			return p, nil
		}
		return nil, &FailedError{Op: "plan", Stack: s.Name, Region: d.Region, Status: "change set " + string(cs.Status), Reason: reason}
	}

	p.Changes = []Change{}
	for {
		for _, c := range cs.Changes {
			if c.ResourceChange != nil {
				p.Changes = append(p.Changes, change(c.ResourceChange))
			}
		}
		if aws.ToString(cs.NextToken) == "" {
			break
		}
		cs, err = d.CFN.DescribeChangeSet(ctx, &cloudformation.DescribeChangeSetInput{
			StackName: aws.String(s.Name), ChangeSetName: aws.String(p.ChangeSetID),
			IncludePropertyValues: aws.Bool(true), NextToken: cs.NextToken,
		})
		if err != nil {
			return nil, d.fail("plan", s.Name, err)
		}
	}
	return p, nil
}

// isNoChanges recognises CloudFormation's ways of saying the stack is
// already up to date.
func isNoChanges(reason string) bool {
	return strings.Contains(reason, "didn't contain changes") || strings.Contains(reason, "No updates are to be performed")
}

// waitChangeSet polls until the change set is computed or failed, and
// returns its first page of changes.
func (d *Deployer) waitChangeSet(ctx context.Context, p *Plan) (*cloudformation.DescribeChangeSetOutput, error) {
	for {
		if err := d.sleep(ctx); err != nil {
			return nil, fmt.Errorf("plan %s: wait for change set: %w", where(p.Stack, d.Region), err)
		}
		cs, err := d.CFN.DescribeChangeSet(ctx, &cloudformation.DescribeChangeSetInput{
			StackName:             aws.String(p.Stack),
			ChangeSetName:         aws.String(p.ChangeSetID),
			IncludePropertyValues: aws.Bool(true),
		})
		if err != nil {
			return nil, d.fail("plan", p.Stack, err)
		}
		switch cs.Status {
		case types.ChangeSetStatusCreateComplete, types.ChangeSetStatusFailed:
			return cs, nil
		}
	}
}

func change(rc *types.ResourceChange) Change {
	c := Change{
		Action:       string(rc.Action),
		LogicalID:    aws.ToString(rc.LogicalResourceId),
		PhysicalID:   aws.ToString(rc.PhysicalResourceId),
		Type:         aws.ToString(rc.ResourceType),
		Replacement:  string(rc.Replacement),
		PolicyAction: string(rc.PolicyAction),
	}
	for _, s := range rc.Scope {
		c.Scope = append(c.Scope, string(s))
	}
	for _, dt := range rc.Details {
		cd := ChangeDetail{
			Source:        string(dt.ChangeSource),
			CausingEntity: aws.ToString(dt.CausingEntity),
		}
		if t := dt.Target; t != nil {
			cd.Attribute = string(t.Attribute)
			cd.Name = aws.ToString(t.Name)
			cd.RequiresRecreation = string(t.RequiresRecreation)
			cd.Before = aws.ToString(t.BeforeValue)
			cd.After = aws.ToString(t.AfterValue)
		}
		c.Details = append(c.Details, cd)
	}
	return c
}

// DeleteChangeSet deletes the plan's change set and nothing else: the
// stack a CREATE change set made stays, since a newer plan's change set
// may live in it. A change set already gone is not an error.
func (d *Deployer) DeleteChangeSet(ctx context.Context, p *Plan) error {
	if p.ChangeSetID == "" || p.NoChanges {
		return nil
	}
	_, err := d.CFN.DeleteChangeSet(ctx, &cloudformation.DeleteChangeSetInput{
		StackName: aws.String(p.Stack), ChangeSetName: aws.String(p.ChangeSetID),
	})
	if err != nil && !isStackMissing(err) && !isChangeSetMissing(err) {
		return d.fail("discard change set for", p.Stack, err)
	}
	return nil
}

// Discard deletes the plan's change set. For a CREATE plan it also deletes
// the empty stack CloudFormation made to hold the change set, but only while
// that stack is still REVIEW_IN_PROGRESS, so a real stack is never touched.
func (d *Deployer) Discard(ctx context.Context, p *Plan) error {
	if err := d.DeleteChangeSet(ctx, p); err != nil {
		return err
	}
	if p.Type != string(types.ChangeSetTypeCreate) {
		return nil
	}
	st, err := d.describe(ctx, p.Stack)
	if isStackMissing(err) {
		return nil
	}
	if err != nil {
		return d.fail("discard", p.Stack, err)
	}
	if st.StackStatus != types.StackStatusReviewInProgress {
		return nil
	}
	if _, err := d.CFN.DeleteStack(ctx, &cloudformation.DeleteStackInput{StackName: st.StackId}); err != nil {
		return d.fail("discard", p.Stack, err)
	}
	return nil
}

// describe returns the stack named name, or the SDK's error.
func (d *Deployer) describe(ctx context.Context, name string) (*types.Stack, error) {
	out, err := d.CFN.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
	if err != nil {
		return nil, err
	}
	if len(out.Stacks) == 0 {
		// Not what CloudFormation does, but it means the same.
		return nil, &smithy.GenericAPIError{Code: "ValidationError", Message: "Stack with id " + name + " does not exist"}
	}
	return &out.Stacks[0], nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
