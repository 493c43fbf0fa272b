package awsfake

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Stack plays one CloudFormation stack in one region: enough of
// DescribeStacks, DescribeStackEvents, the change set calls, DeleteStack and
// drift detection for a deploy scenario. Set the fields before the calls
// start; AddStack registers it.
type Stack struct {
	Name   string
	Status string // "" means the stack does not exist
	// Outputs are returned by DescribeStacks.
	Outputs map[string]string

	// Changes are the <member> elements of the next change set (see
	// ResourceChange). ChangeSetReason, when set, makes the change set
	// fail with it, as CloudFormation does when nothing changes (NoChanges).
	Changes         []string
	ChangeSetReason string

	// Steps play out one per DescribeStacks call once ExecuteChangeSet or
	// DeleteStack runs. Without steps an execution completes at the first
	// DescribeStacks and a delete at once.
	Steps []Step

	// DriftStatus is DRIFTED or IN_SYNC (the default); Drifts are the
	// <member> elements of StackResourceDrifts (see ResourceDrift).
	DriftStatus string
	Drifts      []string

	// Recorded.
	Template   string     // TemplateBody of the last change set
	Parameters url.Values // its Parameters.member.N.* fields

	id      string
	region  string
	reason  string
	events  []Event
	running bool
	op      string // CREATE or UPDATE while a change set is pending
}

// Step is one state of a running stack operation.
type Step struct {
	Status string
	Reason string // StackStatusReason, for failed and rolled-back states
	Events []Event
}

// Event is a stack event; an empty Logical means the stack itself.
type Event struct {
	Logical, Type, Status, Reason, Physical string
	id                                      string
	at                                      time.Time
}

// NoChanges is CloudFormation's reason for a change set without changes.
const NoChanges = "The submitted information didn't contain changes. Submit different information to create a change set."

var epoch = time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)

// ID is the stack's ARN.
func (st *Stack) ID() string { return st.id }

// AddStack makes st answer CloudFormation calls in region.
func (s *Server) AddStack(region string, st *Stack) {
	st.region = region
	st.id = fmt.Sprintf("arn:aws:cloudformation:%s:123456789012:stack/%s/11111111-2222-3333-4444-%012d", region, st.Name, len(region))
	if st.Status != "" && len(st.events) == 0 {
		st.addEvents(Event{Status: st.Status})
	}
	for action, h := range map[string]Handler{
		"DescribeStacks":                    st.describeStacks,
		"DescribeStackEvents":               st.describeEvents,
		"CreateChangeSet":                   st.createChangeSet,
		"DescribeChangeSet":                 st.describeChangeSet,
		"ExecuteChangeSet":                  st.run,
		"DeleteChangeSet":                   st.deleteChangeSet,
		"DeleteStack":                       st.run,
		"DetectStackDrift":                  st.detectDrift,
		"DescribeStackDriftDetectionStatus": st.driftStatus,
		"DescribeStackResourceDrifts":       st.resourceDrifts,
	} {
		s.HandleIn(region, "cloudformation", action, h)
	}
}

func (st *Stack) changeSetID() string {
	return fmt.Sprintf("arn:aws:cloudformation:%s:123456789012:changeSet/berth-1/66666666-7777-8888-9999-000000000000", st.region)
}

func (st *Stack) addEvents(evs ...Event) {
	for _, e := range evs {
		e.id = "ev-" + strconv.Itoa(len(st.events)+1)
		e.at = epoch.Add(time.Duration(len(st.events)) * time.Second)
		if e.Logical == "" {
			e.Logical, e.Type, e.Physical = st.Name, "AWS::CloudFormation::Stack", st.id
		}
		st.events = append(st.events, e)
	}
}

// known reports whether ref names the stack: by name while it exists, by
// id for ever, as CloudFormation does.
func (st *Stack) known(ref string) bool {
	return ref == st.id || (ref == st.Name && st.Status != "" && st.Status != "DELETE_COMPLETE")
}

func (st *Stack) notExist(ref string) Response {
	return QueryError(400, "ValidationError", "Stack with id "+ref+" does not exist")
}

func (st *Stack) describeStacks(r *Request) Response {
	ref := r.Form.Get("StackName")
	if !st.known(ref) {
		return st.notExist(ref)
	}
	if st.running && len(st.Steps) > 0 {
		step := st.Steps[0]
		st.Steps = st.Steps[1:]
		st.Status, st.reason = step.Status, step.Reason
		st.addEvents(step.Events...)
		st.running = len(st.Steps) > 0
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<Stacks><member><StackName>%s</StackName><StackId>%s</StackId><CreationTime>%s</CreationTime><StackStatus>%s</StackStatus>",
		X(st.Name), X(st.id), epoch.Format(time.RFC3339), X(st.Status))
	if st.reason != "" {
		fmt.Fprintf(&b, "<StackStatusReason>%s</StackStatusReason>", X(st.reason))
	}
	if len(st.Outputs) > 0 {
		b.WriteString("<Outputs>")
		for k, v := range st.Outputs {
			fmt.Fprintf(&b, "<member><OutputKey>%s</OutputKey><OutputValue>%s</OutputValue></member>", X(k), X(v))
		}
		b.WriteString("</Outputs>")
	}
	b.WriteString("</member></Stacks>")
	return Query("cloudformation", "DescribeStacks", b.String())
}

// describeEvents answers newest first, in one page.
func (st *Stack) describeEvents(r *Request) Response {
	ref := r.Form.Get("StackName")
	if !st.known(ref) {
		return st.notExist(ref)
	}
	var b strings.Builder
	b.WriteString("<StackEvents>")
	for i := len(st.events) - 1; i >= 0; i-- {
		e := st.events[i]
		fmt.Fprintf(&b, "<member><StackId>%s</StackId><EventId>%s</EventId><StackName>%s</StackName><LogicalResourceId>%s</LogicalResourceId><PhysicalResourceId>%s</PhysicalResourceId><ResourceType>%s</ResourceType><Timestamp>%s</Timestamp><ResourceStatus>%s</ResourceStatus>",
			X(st.id), e.id, X(st.Name), X(e.Logical), X(e.Physical), X(e.Type), e.at.Format(time.RFC3339), X(e.Status))
		if e.Reason != "" {
			fmt.Fprintf(&b, "<ResourceStatusReason>%s</ResourceStatusReason>", X(e.Reason))
		}
		b.WriteString("</member>")
	}
	b.WriteString("</StackEvents>")
	return Query("cloudformation", "DescribeStackEvents", b.String())
}

func (st *Stack) createChangeSet(r *Request) Response {
	st.Template = r.Form.Get("TemplateBody")
	st.Parameters = url.Values{}
	for k, v := range r.Form {
		if strings.HasPrefix(k, "Parameters.") {
			st.Parameters[k] = v
		}
	}
	st.op = r.Form.Get("ChangeSetType")
	if st.op == "CREATE" && (st.Status == "" || st.Status == "DELETE_COMPLETE") {
		st.Status = "REVIEW_IN_PROGRESS"
		st.addEvents(Event{Status: "REVIEW_IN_PROGRESS", Reason: "User Initiated"})
	}
	return Query("cloudformation", "CreateChangeSet", fmt.Sprintf("<Id>%s</Id><StackId>%s</StackId>", st.changeSetID(), X(st.id)))
}

func (st *Stack) describeChangeSet(r *Request) Response {
	if r.Form.Get("ChangeSetName") != st.changeSetID() {
		return QueryError(404, "ChangeSetNotFound", "ChangeSet ["+r.Form.Get("ChangeSetName")+"] does not exist")
	}
	status, exec := "CREATE_COMPLETE", "AVAILABLE"
	if st.ChangeSetReason != "" {
		status, exec = "FAILED", "UNAVAILABLE"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<ChangeSetId>%s</ChangeSetId><ChangeSetName>berth-1</ChangeSetName><StackId>%s</StackId><StackName>%s</StackName><Status>%s</Status><ExecutionStatus>%s</ExecutionStatus>",
		st.changeSetID(), X(st.id), X(st.Name), status, exec)
	if st.ChangeSetReason != "" {
		fmt.Fprintf(&b, "<StatusReason>%s</StatusReason>", X(st.ChangeSetReason))
	} else {
		b.WriteString("<Changes>" + strings.Join(st.Changes, "") + "</Changes>")
	}
	return Query("cloudformation", "DescribeChangeSet", b.String())
}

func (st *Stack) deleteChangeSet(r *Request) Response {
	return Query("cloudformation", "DeleteChangeSet", "")
}

// run starts ExecuteChangeSet or DeleteStack.
func (st *Stack) run(r *Request) Response {
	action := r.Form.Get("Action")
	if action == "DeleteStack" {
		if !st.known(r.Form.Get("StackName")) {
			return st.notExist(r.Form.Get("StackName"))
		}
		if len(st.Steps) == 0 {
			st.Status = "DELETE_COMPLETE"
			st.addEvents(Event{Status: "DELETE_IN_PROGRESS", Reason: "User Initiated"}, Event{Status: "DELETE_COMPLETE"})
		}
	} else if len(st.Steps) == 0 {
		op := st.op
		st.Steps = []Step{{Status: op + "_COMPLETE", Events: []Event{{Status: op + "_IN_PROGRESS", Reason: "User Initiated"}, {Status: op + "_COMPLETE"}}}}
	}
	st.running = len(st.Steps) > 0
	return Query("cloudformation", action, "")
}

func (st *Stack) detectDrift(r *Request) Response {
	if !st.known(r.Form.Get("StackName")) {
		return st.notExist(r.Form.Get("StackName"))
	}
	return Query("cloudformation", "DetectStackDrift", "<StackDriftDetectionId>drift-1</StackDriftDetectionId>")
}

func (st *Stack) driftStatus(r *Request) Response {
	status := st.DriftStatus
	if status == "" {
		status = "IN_SYNC"
	}
	n := 0
	for _, d := range st.Drifts {
		if strings.Contains(d, "<StackResourceDriftStatus>MODIFIED<") || strings.Contains(d, "<StackResourceDriftStatus>DELETED<") {
			n++
		}
	}
	return Query("cloudformation", "DescribeStackDriftDetectionStatus", fmt.Sprintf(
		"<StackId>%s</StackId><StackDriftDetectionId>drift-1</StackDriftDetectionId><Timestamp>%s</Timestamp><DetectionStatus>DETECTION_COMPLETE</DetectionStatus><StackDriftStatus>%s</StackDriftStatus><DriftedStackResourceCount>%d</DriftedStackResourceCount>",
		X(st.id), epoch.Format(time.RFC3339), status, n))
}

func (st *Stack) resourceDrifts(r *Request) Response {
	return Query("cloudformation", "DescribeStackResourceDrifts", "<StackResourceDrifts>"+strings.Join(st.Drifts, "")+"</StackResourceDrifts>")
}

// ResourceChange is a <member> of DescribeChangeSet's Changes.
func ResourceChange(action, logical, physical, typ, replacement string, details ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<member><Type>Resource</Type><ResourceChange><Action>%s</Action><LogicalResourceId>%s</LogicalResourceId>", action, X(logical))
	if physical != "" {
		fmt.Fprintf(&b, "<PhysicalResourceId>%s</PhysicalResourceId>", X(physical))
	}
	fmt.Fprintf(&b, "<ResourceType>%s</ResourceType>", X(typ))
	if replacement != "" {
		fmt.Fprintf(&b, "<Replacement>%s</Replacement><Scope><member>Properties</member></Scope>", replacement)
	}
	if len(details) > 0 {
		b.WriteString("<Details>" + strings.Join(details, "") + "</Details>")
	}
	b.WriteString("</ResourceChange></member>")
	return b.String()
}

// ChangeDetail is a <member> of a ResourceChange's Details.
func ChangeDetail(name, recreation, source, before, after string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<member><Evaluation>Static</Evaluation><ChangeSource>%s</ChangeSource><Target><Attribute>Properties</Attribute><Name>%s</Name><RequiresRecreation>%s</RequiresRecreation>",
		source, X(name), recreation)
	if before != "" || after != "" {
		fmt.Fprintf(&b, "<BeforeValue>%s</BeforeValue><AfterValue>%s</AfterValue>", X(before), X(after))
	}
	b.WriteString("</Target></member>")
	return b.String()
}

// ResourceDrift is a <member> of StackResourceDrifts; each diff is
// {path, expected, actual, NOT_EQUAL|ADD|REMOVE}.
func ResourceDrift(logical, physical, typ, status string, diffs ...[4]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<member><StackId>stack</StackId><LogicalResourceId>%s</LogicalResourceId><PhysicalResourceId>%s</PhysicalResourceId><ResourceType>%s</ResourceType><StackResourceDriftStatus>%s</StackResourceDriftStatus><Timestamp>%s</Timestamp>",
		X(logical), X(physical), X(typ), status, epoch.Format(time.RFC3339))
	if len(diffs) > 0 {
		b.WriteString("<PropertyDifferences>")
		for _, d := range diffs {
			fmt.Fprintf(&b, "<member><PropertyPath>%s</PropertyPath><ExpectedValue>%s</ExpectedValue><ActualValue>%s</ActualValue><DifferenceType>%s</DifferenceType></member>",
				X(d[0]), X(d[1]), X(d[2]), d[3])
		}
		b.WriteString("</PropertyDifferences>")
	}
	b.WriteString("</member>")
	return b.String()
}
