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

// Result is a stack after a successful Apply.
type Result struct {
	Stack     string            `json:"stack"`
	Region    string            `json:"region,omitempty"`
	StackID   string            `json:"stack_id,omitempty"`
	Status    string            `json:"status"`
	NoChanges bool              `json:"no_changes"`
	Outputs   map[string]string `json:"outputs"`
}

// Apply executes the plan's change set and waits until the stack settles,
// printing each new stack event to d.Events. A plan without changes executes
// nothing and returns the stack's current outputs. When the stack ends
// failed or rolled back, the error is a *FailedError (ErrDeployFailed) naming
// the first resource that failed.
func (d *Deployer) Apply(ctx context.Context, p *Plan) (*Result, error) {
	if p.NoChanges {
		st, err := d.describe(ctx, p.Stack)
		if err != nil {
			return nil, d.fail("deploy", p.Stack, err)
		}
		r := result(p.Stack, d.Region, st)
		r.NoChanges = true
		return r, nil
	}
	ref := p.StackID
	if ref == "" {
		ref = p.Stack
	}
	before := types.StackStatusReviewInProgress
	if p.Type == string(types.ChangeSetTypeUpdate) {
		st, err := d.describe(ctx, ref)
		if err != nil {
			return nil, d.fail("deploy", p.Stack, err)
		}
		before = st.StackStatus
	}
	w, err := d.watchStack(ctx, p.Stack, ref, before)
	if err != nil {
		return nil, d.fail("deploy", p.Stack, err)
	}
	_, err = d.CFN.ExecuteChangeSet(ctx, &cloudformation.ExecuteChangeSetInput{
		StackName: aws.String(p.Stack), ChangeSetName: aws.String(p.ChangeSetID),
	})
	if err != nil {
		return nil, d.fail("deploy", p.Stack, err)
	}
	st, err := d.wait(ctx, "deploy", w)
	if err != nil {
		return nil, err
	}
	switch st.StackStatus {
	case types.StackStatusCreateComplete, types.StackStatusUpdateComplete, types.StackStatusImportComplete:
		return result(p.Stack, d.Region, st), nil
	}
	return nil, w.failed("deploy", d.Region, st)
}

func result(name, region string, st *types.Stack) *Result {
	r := &Result{
		Stack: name, Region: region, StackID: aws.ToString(st.StackId),
		Status: string(st.StackStatus), Outputs: map[string]string{},
	}
	for _, o := range st.Outputs {
		r.Outputs[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
	}
	return r
}

// watch follows one stack operation through its events.
type watch struct {
	name   string // for messages and to tell the stack's own events apart
	ref    string // stack id when known: it still answers after a delete
	before types.StackStatus
	seen   map[string]bool // event ids already handled
	events []Event         // this operation's events, oldest first
	start  time.Time
	quiet  time.Time // last time something was printed
}

// watchStack remembers the events that exist before an operation starts, so
// that only the operation's own are printed and searched for failures. The
// newest page is enough: new events always come before it.
func (d *Deployer) watchStack(ctx context.Context, name, ref string, before types.StackStatus) (*watch, error) {
	now := time.Now()
	w := &watch{name: name, ref: ref, before: before, seen: map[string]bool{}, start: now, quiet: now}
	out, err := d.CFN.DescribeStackEvents(ctx, &cloudformation.DescribeStackEventsInput{StackName: aws.String(ref)})
	if err != nil {
		return nil, err
	}
	for _, e := range out.StackEvents {
		w.seen[aws.ToString(e.EventId)] = true
	}
	return w, nil
}

// wait polls until the stack reaches a status that is not *_IN_PROGRESS,
// printing new events as they come and a progress line when there are none
// for a while.
func (d *Deployer) wait(ctx context.Context, op string, w *watch) (*types.Stack, error) {
	for {
		if err := d.sleep(ctx); err != nil {
			return nil, d.stopped(op, w.name, err)
		}
		// Right after ExecuteChangeSet or DeleteStack the stack may still
		// show its old, settled status. Events seen before this read prove
		// that the operation started, and so that the status read now
		// belongs to it.
		started := len(w.events) > 0
		st, err := d.describe(ctx, w.ref)
		if op == "delete" && isStackMissing(err) {
			// Described by id a deleted stack stays visible for a while
			// as DELETE_COMPLETE; once it is gone, it is gone.
			return &types.Stack{StackName: aws.String(w.name), StackStatus: types.StackStatusDeleteComplete}, nil
		}
		if err == nil {
			err = d.newEvents(ctx, w)
		}
		if err != nil && ctx.Err() != nil {
			return nil, d.stopped(op, w.name, ctx.Err())
		}
		if err != nil {
			return nil, d.fail(op, w.name, err)
		}
		s := st.StackStatus
		if !strings.HasSuffix(string(s), "_IN_PROGRESS") && (s != w.before || started) {
			return st, nil
		}
		if now := time.Now(); now.Sub(w.quiet) >= d.progressEvery() {
			d.printf("%s: %s, %s elapsed\n", where(w.name, d.Region), s, now.Sub(w.start).Round(time.Second))
			w.quiet = now
		}
	}
}

// stopped says that the caller gave up waiting, and that CloudFormation did not.
func (d *Deployer) stopped(op, name string, err error) error {
	return fmt.Errorf("%s %s: stop waiting, the operation continues in CloudFormation: %w", op, where(name, d.Region), err)
}

// newEvents reads the events since the last call (the API returns newest
// first, a page at a time) and prints them oldest first.
func (d *Deployer) newEvents(ctx context.Context, w *watch) error {
	var fresh []Event
	var token *string
pages:
	for {
		out, err := d.CFN.DescribeStackEvents(ctx, &cloudformation.DescribeStackEventsInput{
			StackName: aws.String(w.ref), NextToken: token,
		})
		if err != nil {
			return err
		}
		for _, e := range out.StackEvents {
			if w.seen[aws.ToString(e.EventId)] {
				break pages
			}
			fresh = append(fresh, event(e))
		}
		token = out.NextToken
		if aws.ToString(token) == "" {
			break
		}
	}
	for i := len(fresh) - 1; i >= 0; i-- {
		e := fresh[i]
		if w.seen[e.ID] { // a page boundary moved while we read
			continue
		}
		w.seen[e.ID] = true
		w.events = append(w.events, e)
		line := fmt.Sprintf("%s  %-28s %-32s %-20s", e.Time.UTC().Format("15:04:05"), e.LogicalID, e.Type, e.Status)
		if e.Reason != "" {
			line += " " + e.Reason
		}
		d.printf("%s\n", strings.TrimRight(line, " "))
		w.quiet = time.Now()
	}
	return nil
}

func event(e types.StackEvent) Event {
	return Event{
		ID:         aws.ToString(e.EventId),
		Time:       aws.ToTime(e.Timestamp),
		LogicalID:  aws.ToString(e.LogicalResourceId),
		PhysicalID: aws.ToString(e.PhysicalResourceId),
		Type:       aws.ToString(e.ResourceType),
		Status:     string(e.ResourceStatus),
		Reason:     aws.ToString(e.ResourceStatusReason),
	}
}

// failed builds the error for a stack that settled in a failed state: the
// first resource that failed explains the rest, which CloudFormation then
// cancels or rolls back.
func (w *watch) failed(op, region string, st *types.Stack) error {
	fe := &FailedError{Op: op, Stack: w.name, Region: region, Status: string(st.StackStatus), Reason: aws.ToString(st.StackStatusReason)}
	for i, e := range w.events {
		if strings.HasSuffix(e.Status, "_FAILED") && !w.isStack(e) {
			fe.Resource = &w.events[i]
			break
		}
	}
	return fe
}

// isStack reports whether e is about the stack itself rather than one of its
// resources (a nested stack is a resource with the same type).
func (w *watch) isStack(e Event) bool {
	return e.Type == "AWS::CloudFormation::Stack" && e.LogicalID == w.name
}
