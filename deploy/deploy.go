// Package deploy creates, updates, inspects and removes CloudFormation stacks
// through change sets: Plan shows what would change, Apply executes the plan
// and streams stack events until the stack settles, Drift compares the
// deployed resources with the template and Delete removes a stack while
// reporting what CloudFormation kept.
//
// Every call goes through CloudFormationAPI, the few methods of the SDK
// client this package uses, so tests can point the real client at a fake
// server and callers can pass a client built for any account and region.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/smithy-go"

	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/internal/awserr"
)

// CloudFormationAPI is the part of *cloudformation.Client that deploy uses.
type CloudFormationAPI interface {
	CreateChangeSet(ctx context.Context, in *cloudformation.CreateChangeSetInput, optFns ...func(*cloudformation.Options)) (*cloudformation.CreateChangeSetOutput, error)
	DescribeChangeSet(ctx context.Context, in *cloudformation.DescribeChangeSetInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DescribeChangeSetOutput, error)
	ExecuteChangeSet(ctx context.Context, in *cloudformation.ExecuteChangeSetInput, optFns ...func(*cloudformation.Options)) (*cloudformation.ExecuteChangeSetOutput, error)
	DeleteChangeSet(ctx context.Context, in *cloudformation.DeleteChangeSetInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DeleteChangeSetOutput, error)
	DescribeStacks(ctx context.Context, in *cloudformation.DescribeStacksInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error)
	DescribeStackEvents(ctx context.Context, in *cloudformation.DescribeStackEventsInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DescribeStackEventsOutput, error)
	DeleteStack(ctx context.Context, in *cloudformation.DeleteStackInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DeleteStackOutput, error)
	DetectStackDrift(ctx context.Context, in *cloudformation.DetectStackDriftInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DetectStackDriftOutput, error)
	DescribeStackDriftDetectionStatus(ctx context.Context, in *cloudformation.DescribeStackDriftDetectionStatusInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DescribeStackDriftDetectionStatusOutput, error)
	DescribeStackResourceDrifts(ctx context.Context, in *cloudformation.DescribeStackResourceDriftsInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DescribeStackResourceDriftsOutput, error)
}

var _ CloudFormationAPI = (*cloudformation.Client)(nil)

// Error kinds, tested with errors.Is. AWS errors additionally carry the store
// kinds from awserr (errkind.PermissionDenied, errkind.Unavailable, ...).
var (
	// ErrStackNotFound: the stack does not exist. Errors of this kind also
	// match errkind.NotFound, so exit codes need no special case.
	ErrStackNotFound = errors.New("stack not found")
	// ErrDeployFailed: CloudFormation rejected the change set or the stack
	// ended in a failed or rolled-back state. The error is a *FailedError.
	ErrDeployFailed = errors.New("deploy failed")
)

// DefaultPoll is how often Deployer polls CloudFormation while it waits.
const DefaultPoll = 5 * time.Second

// DefaultProgressEvery is how long a wait may stay silent before Deployer
// prints a progress line, so a slow resource (a CloudFront distribution, a
// KMS key deletion) doesn't look like a hang.
const DefaultProgressEvery = 30 * time.Second

// Deployer deploys stacks in one account and region.
type Deployer struct {
	CFN    CloudFormationAPI
	Region string        // named in messages only; the client decides where calls go
	Events io.Writer     // stack events and progress lines while waiting; nil is silent
	Poll   time.Duration // 0 means DefaultPoll
	// ProgressEvery: silence before a progress line; 0 means
	// DefaultProgressEvery.
	ProgressEvery time.Duration
}

// Stack is what to deploy.
type Stack struct {
	Name         string
	TemplateBody string
	Parameters   map[string]string
	Tags         map[string]string
	Capabilities []string // e.g. CAPABILITY_NAMED_IAM
}

// Event is one stack event.
type Event struct {
	ID         string    `json:"id"`
	Time       time.Time `json:"time"`
	LogicalID  string    `json:"logical_id"`
	PhysicalID string    `json:"physical_id,omitempty"`
	Type       string    `json:"type"`
	Status     string    `json:"status"`
	Reason     string    `json:"reason,omitempty"`
}

// FailedError reports a stack operation that CloudFormation could not finish.
// It matches ErrDeployFailed.
type FailedError struct {
	Op     string `json:"op"` // "plan", "deploy" or "delete"
	Stack  string `json:"stack"`
	Region string `json:"region,omitempty"`
	Status string `json:"status"` // final stack or change set status
	// Resource is the first resource that failed; the resources after it
	// usually failed only because it did ("Resource creation cancelled").
	// Nil when no resource failed (a rejected change set, a stack-level error).
	Resource *Event `json:"resource,omitempty"`
	Reason   string `json:"reason,omitempty"` // stack or change set status reason
}

func (e *FailedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: ", e.Op, where(e.Stack, e.Region))
	if r := e.Resource; r != nil {
		fmt.Fprintf(&b, "%s (%s) %s", r.LogicalID, r.Type, r.Status)
		if r.Reason != "" {
			fmt.Fprintf(&b, ": %s", r.Reason)
		}
		fmt.Fprintf(&b, "; stack is %s", e.Status)
		return b.String()
	}
	fmt.Fprintf(&b, "%s", e.Status)
	if e.Reason != "" {
		fmt.Fprintf(&b, ": %s", e.Reason)
	}
	return b.String()
}

func (e *FailedError) Unwrap() error { return ErrDeployFailed }

// notFound marks a CloudFormation "does not exist" error with both
// ErrStackNotFound and errkind.NotFound. Without it awserr would file the
// ValidationError (HTTP 400) under errkind.Invalid, a usage error.
type notFound struct{ err error }

func (e *notFound) Error() string   { return e.err.Error() }
func (e *notFound) Unwrap() []error { return []error{ErrStackNotFound, errkind.NotFound, e.err} }

// isStackMissing reports CloudFormation's answer for a stack that doesn't
// exist: a ValidationError "Stack with id NAME does not exist".
func isStackMissing(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && api.ErrorCode() == "ValidationError" &&
		strings.Contains(api.ErrorMessage(), "does not exist")
}

// isChangeSetMissing reports CloudFormation's answer for a change set that
// is gone (deleted, or removed when another change set of the stack ran).
func isChangeSetMissing(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && api.ErrorCode() == "ChangeSetNotFound"
}

// fail wraps err from an AWS call on stack name: "verb stack NAME in REGION: err".
func (d *Deployer) fail(verb, name string, err error) error {
	if isStackMissing(err) {
		err = &notFound{err}
	} else {
		err = awserr.Classify(err)
	}
	return fmt.Errorf("%s %s: %w", verb, where(name, d.Region), err)
}

func where(name, region string) string {
	if region == "" {
		return "stack " + name
	}
	return "stack " + name + " in " + region
}

func (d *Deployer) poll() time.Duration {
	if d.Poll > 0 {
		return d.Poll
	}
	return DefaultPoll
}

// sleep waits one poll interval or until ctx is done.
func (d *Deployer) sleep(ctx context.Context) error {
	t := time.NewTimer(d.poll())
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// printf writes one line to d.Events with a single Write, so several
// Deployers (one per region) can share a line-prefixing writer.
func (d *Deployer) printf(format string, args ...any) {
	if d.Events == nil {
		return
	}
	_, _ = io.WriteString(d.Events, fmt.Sprintf(format, args...))
}

func (d *Deployer) progressEvery() time.Duration {
	if d.ProgressEvery > 0 {
		return d.ProgressEvery
	}
	return DefaultProgressEvery
}
