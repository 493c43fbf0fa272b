package deploy

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
)

// fakeCFN speaks the CloudFormation query protocol (form-encoded POST,
// XML answers) well enough for one scripted scenario. Its default handlers
// play a single stack; a test scripts the stack's progress with steps and
// overrides any action with its own handler.
type fakeCFN struct {
	t  *testing.T
	mu sync.Mutex

	name, id string
	status   string // "" means the stack does not exist
	outputs  map[string]string
	events   []evt // oldest first
	// steps play out one per DescribeStacks call once an operation runs
	// (ExecuteChangeSet, DeleteStack).
	steps   []step
	running bool

	csStatus []string // DescribeChangeSet statuses in turn; the last one repeats
	csReason string
	changes  []string // <member> elements of Changes, served two per page

	driftStatus []string // DescribeStackDriftDetectionStatus in turn; the last repeats
	drifts      []string // <member> elements of StackResourceDrifts, two per page

	handlers map[string]func(url.Values) reply // overrides
	calls    []call
}

type call struct {
	action string
	form   url.Values
}

type step struct {
	status string
	events []evt
}

type evt struct {
	logical, typ, status, reason, physical string
	id                                     string // set when the event is added
	at                                     time.Time
}

// reply is a handler's answer: the inner XML of the <ActionResult>, or an
// error when code is set.
type reply struct {
	result string
	code   string // error code, e.g. ValidationError
	msg    string
	status int // HTTP status for errors; 400 when 0
}

func errReply(status int, code, msg string) reply { return reply{code: code, msg: msg, status: status} }

const stackID = "arn:aws:cloudformation:eu-west-1:123456789012:stack/berth-data/11111111-2222-3333-4444-555555555555"
const changeSetID = "arn:aws:cloudformation:eu-west-1:123456789012:changeSet/berth-1/66666666-7777-8888-9999-000000000000"

var epoch = time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)

func newFake(t *testing.T) *fakeCFN {
	return &fakeCFN{t: t, name: "berth-data", id: stackID, handlers: map[string]func(url.Values) reply{}}
}

// deployer starts the server and returns a Deployer whose real SDK client
// talks to it.
func (f *fakeCFN) deployer(events *strings.Builder) *Deployer {
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	f.t.Cleanup(srv.Close)
	client := cloudformation.NewFromConfig(aws.Config{
		Region:           "eu-west-1",
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""),
		BaseEndpoint:     aws.String(srv.URL),
		RetryMaxAttempts: 1,
	})
	d := &Deployer{CFN: client, Region: "eu-west-1", Poll: 5 * time.Millisecond}
	if events != nil {
		d.Events = events
	}
	return d
}

func (f *fakeCFN) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		f.t.Errorf("parse form: %v", err)
	}
	action := r.Form.Get("Action")
	f.mu.Lock()
	f.calls = append(f.calls, call{action, r.Form})
	h := f.handlers[action]
	if h == nil {
		h = f.defaults(action)
	}
	var rep reply
	if h == nil {
		f.t.Errorf("unexpected call %s", action)
		rep = errReply(400, "InvalidAction", "no handler for "+action)
	} else {
		rep = h(r.Form)
	}
	f.mu.Unlock()

	w.Header().Set("Content-Type", "text/xml")
	if rep.code != "" {
		status := rep.status
		if status == 0 {
			status = 400
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, `<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>req-1</RequestId></ErrorResponse>`,
			x(rep.code), x(rep.msg))
		return
	}
	fmt.Fprintf(w, `<%[1]sResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><%[1]sResult>%[2]s</%[1]sResult><ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata></%[1]sResponse>`,
		action, rep.result)
}

// actions returns the actions called, in order.
func (f *fakeCFN) actions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		out = append(out, c.action)
	}
	return out
}

// form returns the form of the last call of action, or nil.
func (f *fakeCFN) form(action string) url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.calls) - 1; i >= 0; i-- {
		if f.calls[i].action == action {
			return f.calls[i].form
		}
	}
	return nil
}

func (f *fakeCFN) called(action string) bool { return f.form(action) != nil }

// addEvents appends events; callers hold f.mu (or run before the server does).
func (f *fakeCFN) addEvents(evs ...evt) {
	for _, e := range evs {
		e.id = "ev-" + strconv.Itoa(len(f.events)+1)
		e.at = epoch.Add(time.Duration(len(f.events)) * time.Second)
		if e.typ == "" {
			e.typ = "AWS::CloudFormation::Stack"
		}
		if e.logical == "" {
			e.logical = f.name
			e.physical = f.id
		}
		f.events = append(f.events, e)
	}
}

func (f *fakeCFN) notExist(name string) reply {
	return errReply(400, "ValidationError", "Stack with id "+name+" does not exist")
}

// known reports whether ref names the fake's stack (by name while it exists,
// by id for ever, as CloudFormation does).
func (f *fakeCFN) known(ref string) bool {
	return ref == f.id || (ref == f.name && f.status != "" && f.status != "DELETE_COMPLETE")
}

func (f *fakeCFN) defaults(action string) func(url.Values) reply {
	switch action {
	case "DescribeStacks":
		return func(v url.Values) reply {
			ref := v.Get("StackName")
			if !f.known(ref) {
				return f.notExist(ref)
			}
			if f.running && len(f.steps) > 0 {
				s := f.steps[0]
				f.steps = f.steps[1:]
				f.status = s.status
				f.addEvents(s.events...)
			}
			var b strings.Builder
			fmt.Fprintf(&b, "<Stacks><member><StackName>%s</StackName><StackId>%s</StackId><CreationTime>%s</CreationTime><StackStatus>%s</StackStatus>",
				x(f.name), x(f.id), epoch.Format(time.RFC3339), x(f.status))
			if strings.HasSuffix(f.status, "FAILED") || strings.Contains(f.status, "ROLLBACK") {
				b.WriteString("<StackStatusReason>The following resource(s) failed to create: [ArtifactBucket]. Rollback requested by user.</StackStatusReason>")
			}
			if len(f.outputs) > 0 {
				b.WriteString("<Outputs>")
				for _, k := range sortedKeys(f.outputs) {
					fmt.Fprintf(&b, "<member><OutputKey>%s</OutputKey><OutputValue>%s</OutputValue></member>", x(k), x(f.outputs[k]))
				}
				b.WriteString("</Outputs>")
			}
			b.WriteString("<Parameters><member><ParameterKey>Qualifier</ParameterKey><ParameterValue>main</ParameterValue></member></Parameters>")
			b.WriteString("<Tags><member><Key>berth:stack</Key><Value>data</Value></member></Tags>")
			b.WriteString("</member></Stacks>")
			return reply{result: b.String()}
		}
	case "DescribeStackEvents":
		// Newest first, three a page, as a NextToken offset.
		return func(v url.Values) reply {
			ref := v.Get("StackName")
			if !f.known(ref) {
				return f.notExist(ref)
			}
			start, _ := strconv.Atoi(v.Get("NextToken"))
			var b strings.Builder
			b.WriteString("<StackEvents>")
			n := 0
			for i := len(f.events) - 1 - start; i >= 0 && n < 3; i-- {
				e := f.events[i]
				fmt.Fprintf(&b, "<member><StackId>%s</StackId><EventId>%s</EventId><StackName>%s</StackName><LogicalResourceId>%s</LogicalResourceId><PhysicalResourceId>%s</PhysicalResourceId><ResourceType>%s</ResourceType><Timestamp>%s</Timestamp><ResourceStatus>%s</ResourceStatus>",
					x(f.id), x(e.id), x(f.name), x(e.logical), x(e.physical), x(e.typ), e.at.Format(time.RFC3339), x(e.status))
				if e.reason != "" {
					fmt.Fprintf(&b, "<ResourceStatusReason>%s</ResourceStatusReason>", x(e.reason))
				}
				b.WriteString("</member>")
				n++
			}
			b.WriteString("</StackEvents>")
			if next := start + n; next < len(f.events) {
				fmt.Fprintf(&b, "<NextToken>%d</NextToken>", next)
			}
			return reply{result: b.String()}
		}
	case "CreateChangeSet":
		return func(v url.Values) reply {
			if f.status == "" {
				f.status = "REVIEW_IN_PROGRESS"
				f.addEvents(evt{status: "REVIEW_IN_PROGRESS", reason: "User Initiated"})
			}
			return reply{result: fmt.Sprintf("<Id>%s</Id><StackId>%s</StackId>", changeSetID, f.id)}
		}
	case "DescribeChangeSet":
		return func(v url.Values) reply {
			if v.Get("ChangeSetName") != changeSetID {
				return errReply(404, "ChangeSetNotFound", "ChangeSet ["+v.Get("ChangeSetName")+"] does not exist")
			}
			status := "CREATE_COMPLETE"
			if len(f.csStatus) > 0 {
				status = f.csStatus[0]
				if len(f.csStatus) > 1 {
					f.csStatus = f.csStatus[1:]
				}
			}
			var b strings.Builder
			fmt.Fprintf(&b, "<ChangeSetId>%s</ChangeSetId><ChangeSetName>berth-1</ChangeSetName><StackId>%s</StackId><StackName>%s</StackName><Status>%s</Status><ExecutionStatus>AVAILABLE</ExecutionStatus>",
				changeSetID, x(f.id), x(f.name), status)
			if f.csReason != "" {
				fmt.Fprintf(&b, "<StatusReason>%s</StatusReason>", x(f.csReason))
			}
			if status == "CREATE_COMPLETE" {
				start, _ := strconv.Atoi(v.Get("NextToken"))
				end := min(start+2, len(f.changes))
				b.WriteString("<Changes>" + strings.Join(f.changes[start:end], "") + "</Changes>")
				if end < len(f.changes) {
					fmt.Fprintf(&b, "<NextToken>%d</NextToken>", end)
				}
			}
			return reply{result: b.String()}
		}
	case "ExecuteChangeSet", "DeleteStack":
		return func(v url.Values) reply {
			f.running = true
			if action == "DeleteStack" && len(f.steps) == 0 {
				f.status = "DELETE_COMPLETE"
			}
			return reply{}
		}
	case "DeleteChangeSet":
		return func(v url.Values) reply { return reply{} }
	case "DetectStackDrift":
		return func(v url.Values) reply {
			if !f.known(v.Get("StackName")) {
				return f.notExist(v.Get("StackName"))
			}
			return reply{result: "<StackDriftDetectionId>drift-1</StackDriftDetectionId>"}
		}
	case "DescribeStackDriftDetectionStatus":
		return func(v url.Values) reply {
			status := f.driftStatus[0]
			if len(f.driftStatus) > 1 {
				f.driftStatus = f.driftStatus[1:]
			}
			var b strings.Builder
			fmt.Fprintf(&b, "<StackId>%s</StackId><StackDriftDetectionId>drift-1</StackDriftDetectionId><Timestamp>%s</Timestamp><DetectionStatus>%s</DetectionStatus>",
				x(f.id), epoch.Format(time.RFC3339), status)
			if status != "DETECTION_IN_PROGRESS" {
				b.WriteString("<StackDriftStatus>DRIFTED</StackDriftStatus><DriftedStackResourceCount>1</DriftedStackResourceCount>")
			}
			return reply{result: b.String()}
		}
	case "DescribeStackResourceDrifts":
		return func(v url.Values) reply {
			start, _ := strconv.Atoi(v.Get("NextToken"))
			end := min(start+2, len(f.drifts))
			r := "<StackResourceDrifts>" + strings.Join(f.drifts[start:end], "") + "</StackResourceDrifts>"
			if end < len(f.drifts) {
				r += fmt.Sprintf("<NextToken>%d</NextToken>", end)
			}
			return reply{result: r}
		}
	}
	return nil
}

// x escapes s for XML text.
func x(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// resourceChange is a <member> of DescribeChangeSet's Changes.
func resourceChange(action, logical, physical, typ, replacement string, details ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<member><Type>Resource</Type><ResourceChange><Action>%s</Action><LogicalResourceId>%s</LogicalResourceId>", action, logical)
	if physical != "" {
		fmt.Fprintf(&b, "<PhysicalResourceId>%s</PhysicalResourceId>", x(physical))
	}
	fmt.Fprintf(&b, "<ResourceType>%s</ResourceType>", typ)
	if replacement != "" {
		fmt.Fprintf(&b, "<Replacement>%s</Replacement><Scope><member>Properties</member></Scope>", replacement)
	}
	if len(details) > 0 {
		b.WriteString("<Details>" + strings.Join(details, "") + "</Details>")
	}
	b.WriteString("</ResourceChange></member>")
	return b.String()
}

// changeDetail is a <member> of a ResourceChange's Details.
func changeDetail(name, recreation, source, causing, before, after string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<member><Evaluation>Static</Evaluation><ChangeSource>%s</ChangeSource>", source)
	if causing != "" {
		fmt.Fprintf(&b, "<CausingEntity>%s</CausingEntity>", x(causing))
	}
	fmt.Fprintf(&b, "<Target><Attribute>Properties</Attribute><Name>%s</Name><RequiresRecreation>%s</RequiresRecreation>", name, recreation)
	if before != "" || after != "" {
		fmt.Fprintf(&b, "<BeforeValue>%s</BeforeValue><AfterValue>%s</AfterValue>", x(before), x(after))
	}
	b.WriteString("</Target></member>")
	return b.String()
}

// resourceDriftXML is a <member> of StackResourceDrifts.
func resourceDriftXML(logical, physical, typ, status string, diffs ...[4]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<member><StackId>%s</StackId><LogicalResourceId>%s</LogicalResourceId><PhysicalResourceId>%s</PhysicalResourceId><ResourceType>%s</ResourceType><StackResourceDriftStatus>%s</StackResourceDriftStatus><Timestamp>%s</Timestamp>",
		stackID, logical, x(physical), typ, status, epoch.Format(time.RFC3339))
	if len(diffs) > 0 {
		b.WriteString("<PropertyDifferences>")
		for _, d := range diffs {
			fmt.Fprintf(&b, "<member><PropertyPath>%s</PropertyPath><ExpectedValue>%s</ExpectedValue><ActualValue>%s</ActualValue><DifferenceType>%s</DifferenceType></member>",
				x(d[0]), x(d[1]), x(d[2]), d[3])
		}
		b.WriteString("</PropertyDifferences>")
	}
	b.WriteString("</member>")
	return b.String()
}
