// Package awsfake is a wire-level stand-in for the AWS services berth's
// onboarding commands call, for tests only. One httptest server answers for
// every service: the SDK is pointed at it with AWS_ENDPOINT_URL, signs its
// requests as usual, and the server routes each request by the service and
// region in the signature's credential scope and by the action:
//
//	query protocol (CloudFormation, STS, IAM)   form field Action=...
//	JSON 1.1 (KMS, SSM)                         header X-Amz-Target: TrentService.DescribeKey
//	REST (S3)                                   method and path: "HEAD /bucket"
//
// Each test registers the few handlers its scenario needs; a call without a
// handler fails the test, so a scenario also pins down which calls are made.
// The helpers write the documented response shapes, so the SDK's real
// deserialisers and berth's parsing both run.
package awsfake

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// Request is one call as the server saw it.
type Request struct {
	Service     string         // signing name: cloudformation, sts, iam, kms, ssm, s3
	Region      string         // signing region
	Action      string         // query Action, JSON target operation, or "METHOD /path" for REST
	AccessKeyID string         // the key that signed the request
	Form        url.Values     // query protocol
	JSON        map[string]any // JSON protocol
	HTTP        *http.Request
}

// Response is a handler's answer.
type Response struct {
	Status int // 200 when 0
	Header http.Header
	Body   string
}

// Handler answers one call.
type Handler func(*Request) Response

// Server is the fake endpoint.
type Server struct {
	URL string

	t        testing.TB
	mu       sync.Mutex
	handlers map[string]Handler // "service action", "service region action"
	calls    []*Request
}

// New starts a server that lives as long as the test.
func New(t testing.TB) *Server {
	s := &Server{t: t, handlers: map[string]Handler{}}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Test credentials; the fake does not verify signatures.
const (
	AccessKeyID     = "AKIAFAKETEST00000001"
	SecretAccessKey = "fakeSECRETkey0000000000000000000000000000"
)

// Setenv points the SDK at the server for the rest of the test: every
// service's endpoint, static credentials from the environment, the region,
// and no shared config files, so nothing on the machine running the test
// interferes. Tests that use it cannot run in parallel.
func (s *Server) Setenv(t testing.TB, region string) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL":            s.URL,
		"AWS_ACCESS_KEY_ID":           AccessKeyID,
		"AWS_SECRET_ACCESS_KEY":       SecretAccessKey,
		"AWS_SESSION_TOKEN":           "",
		"AWS_REGION":                  region,
		"AWS_DEFAULT_REGION":          "",
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_MAX_ATTEMPTS":            "1",
	} {
		t.Setenv(k, v)
	}
}

// WriteConfig writes a shared config file (the AWS_CONFIG_FILE Setenv chose)
// and removes the static keys from the environment, for tests of profiles.
func (s *Server) WriteConfig(t testing.TB, config string) {
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	if err := os.WriteFile(os.Getenv("AWS_CONFIG_FILE"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Handle registers h for action of service in any region. action is the
// query Action (CreateChangeSet), the JSON operation (DescribeKey) or
// "METHOD /path" for S3.
func (s *Server) Handle(service, action string, h Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlers[service+" "+action] = h
}

// HandleIn registers h for action of service in one region; it takes
// precedence over Handle.
func (s *Server) HandleIn(region, service, action string, h Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlers[service+" "+region+" "+action] = h
}

// Calls returns the calls so far, in order.
func (s *Server) Calls() []*Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Request(nil), s.calls...)
}

// Called returns the calls of action to service, in order.
func (s *Server) Called(service, action string) []*Request {
	var out []*Request
	for _, c := range s.Calls() {
		if c.Service == service && c.Action == action {
			out = append(out, c)
		}
	}
	return out
}

// scopeRe reads the credential scope of a SigV4 Authorization header:
// Credential=AKID/DATE/REGION/SERVICE/aws4_request.
var scopeRe = regexp.MustCompile(`Credential=([^/]+)/[0-9]{8}/([^/]+)/([^/]+)/aws4_request`)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	req := &Request{HTTP: r}
	if m := scopeRe.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		req.AccessKeyID, req.Region, req.Service = m[1], m[2], m[3]
	}
	body, _ := io.ReadAll(r.Body)
	switch target := r.Header.Get("X-Amz-Target"); {
	case target != "":
		_, req.Action, _ = strings.Cut(target, ".")
		req.JSON = map[string]any{}
		if len(body) > 0 {
			if err := json.Unmarshal(body, &req.JSON); err != nil {
				s.t.Errorf("awsfake: %s %s: body is not JSON: %v", req.Service, req.Action, err)
			}
		}
	case req.Service == "s3":
		req.Action = r.Method + " " + r.URL.Path
	default:
		form, err := url.ParseQuery(string(body))
		if err != nil {
			s.t.Errorf("awsfake: %s: parse form: %v", req.Service, err)
		}
		req.Form = form
		req.Action = form.Get("Action")
	}

	s.mu.Lock()
	s.calls = append(s.calls, req)
	h := s.handlers[req.Service+" "+req.Region+" "+req.Action]
	if h == nil {
		h = s.handlers[req.Service+" "+req.Action]
	}
	// Handlers run one at a time, so per-test state needs no locks even
	// when berth calls several regions in parallel.
	var resp Response
	if h == nil {
		s.t.Errorf("awsfake: unexpected call %s %s in %s", req.Service, req.Action, req.Region)
		resp = QueryError(400, "InvalidAction", "awsfake has no handler for "+req.Action)
	} else {
		resp = h(req)
	}
	s.mu.Unlock()

	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	if resp.Status == 0 {
		resp.Status = 200
	}
	w.WriteHeader(resp.Status)
	io.WriteString(w, resp.Body)
}

// namespaces of the query protocol services' XML answers.
var namespaces = map[string]string{
	"cloudformation": "http://cloudformation.amazonaws.com/doc/2010-05-15/",
	"sts":            "https://sts.amazonaws.com/doc/2011-06-15/",
	"iam":            "https://iam.amazonaws.com/doc/2010-05-08/",
}

// Query is a successful query protocol answer: inner is the XML inside
// <ActionResult>.
func Query(service, action, inner string) Response {
	return Response{
		Header: http.Header{"Content-Type": {"text/xml"}},
		Body: fmt.Sprintf(`<%[1]sResponse xmlns="%[3]s"><%[1]sResult>%[2]s</%[1]sResult><ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata></%[1]sResponse>`,
			action, inner, namespaces[service]),
	}
}

// QueryError is a query protocol error.
func QueryError(status int, code, message string) Response {
	return Response{
		Status: status,
		Header: http.Header{"Content-Type": {"text/xml"}},
		Body: fmt.Sprintf(`<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>req-1</RequestId></ErrorResponse>`,
			X(code), X(message)),
	}
}

// JSON is a successful JSON 1.1 answer.
func JSON(v any) Response {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return Response{Header: http.Header{"Content-Type": {"application/x-amz-json-1.1"}}, Body: string(b)}
}

// JSONError is a JSON 1.1 error; code is the bare type, such as
// NotFoundException.
func JSONError(status int, code, message string) Response {
	r := JSON(map[string]string{"__type": code, "message": message})
	r.Status = status
	return r
}

// X escapes s for XML text.
func X(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// CallerIdentity answers sts:GetCallerIdentity for arn.
func CallerIdentity(account, arn string) Handler {
	return func(*Request) Response {
		return Query("sts", "GetCallerIdentity", fmt.Sprintf(
			`<Arn>%s</Arn><UserId>AIDAFAKE:%s</UserId><Account>%s</Account>`, X(arn), X(account), X(account)))
	}
}

// Assumed are the credentials AssumeRole hands out; calls signed with them
// carry this AccessKeyID.
const AssumedKeyID = "ASIAFAKEASSUMED00001"

// AssumeRole answers sts:AssumeRole for any role with AssumedKeyID.
func AssumeRole() Handler {
	return func(r *Request) Response {
		role := r.Form.Get("RoleArn")
		name := role[strings.LastIndex(role, "/")+1:]
		account := strings.Split(role, ":")[4]
		return Query("sts", "AssumeRole", fmt.Sprintf(`<AssumedRoleUser><Arn>arn:aws:sts::%s:assumed-role/%s/%s</Arn><AssumedRoleId>AROAFAKE:%[3]s</AssumedRoleId></AssumedRoleUser>`+
			`<Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>assumedSECRET000000000000000000000000000</SecretAccessKey><SessionToken>assumedTOKEN</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>`,
			X(account), X(name), X(r.Form.Get("RoleSessionName")), AssumedKeyID))
	}
}

// Error answers every call with a query protocol error.
func Error(status int, code, message string) Handler {
	return func(*Request) Response { return QueryError(status, code, message) }
}
