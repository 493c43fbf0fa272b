package awsx

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/ssocreds"

	"github.com/berth-dev/berth/errkind"
)

// Secrets the fake hands out or the tests start with; no error may contain them.
const (
	sourceSecret  = "SOURCEsecretKEY0000000000000000000000000"
	sourceToken   = "SOURCEsessionTOKEN"
	assumedKeyID  = "ASIAASSUMEDKEY000001"
	assumedSecret = "ASSUMEDsecretKEY000000000000000000000000"
	assumedToken  = "ASSUMEDsessionTOKEN"
	roleARN       = "arn:aws:iam::123456789012:role/berth-provisioner"
)

// fakeSTS speaks the STS query protocol. A test sets an error reply per
// action; otherwise AssumeRole and GetCallerIdentity succeed.
type fakeSTS struct {
	t      *testing.T
	mu     sync.Mutex
	forms  map[string][]url.Values
	auth   map[string]string // Authorization header of the last call per action
	errors map[string][3]string
}

func newSTS(t *testing.T) (*fakeSTS, aws.Config) {
	f := &fakeSTS{t: t, forms: map[string][]url.Values{}, auth: map[string]string{}, errors: map[string][3]string{}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	cfg := aws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("AKIASOURCE0000000001", sourceSecret, sourceToken),
		BaseEndpoint:     aws.String(srv.URL),
		RetryMaxAttempts: 1,
	}
	return f, cfg
}

func (f *fakeSTS) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		f.t.Errorf("parse form: %v", err)
	}
	action := r.Form.Get("Action")
	f.mu.Lock()
	f.forms[action] = append(f.forms[action], r.Form)
	f.auth[action] = r.Header.Get("Authorization")
	e, fail := f.errors[action]
	f.mu.Unlock()

	w.Header().Set("Content-Type", "text/xml")
	if fail {
		var status int
		fmt.Sscan(e[0], &status)
		w.WriteHeader(status)
		fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>req-1</RequestId></ErrorResponse>`, e[1], e[2])
		return
	}
	var result string
	switch action {
	case "AssumeRole":
		result = fmt.Sprintf(`<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/berth-provisioner/%s</Arn><AssumedRoleId>AROAEXAMPLE:%[1]s</AssumedRoleId></AssumedRoleUser>`+
			`<Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey><SessionToken>%s</SessionToken><Expiration>%s</Expiration></Credentials>`,
			r.Form.Get("RoleSessionName"), assumedKeyID, assumedSecret, assumedToken, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	case "GetCallerIdentity":
		result = `<Arn>arn:aws:sts::123456789012:assumed-role/berth-provisioner/berth-alice</Arn><UserId>AROAEXAMPLE:berth-alice</UserId><Account>123456789012</Account>`
	default:
		f.t.Errorf("unexpected action %s", action)
	}
	fmt.Fprintf(w, `<%[1]sResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><%[1]sResult>%[2]s</%[1]sResult><ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata></%[1]sResponse>`, action, result)
}

func (f *fakeSTS) calls(action string) []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.forms[action]
}

func noSecrets(t *testing.T, err error) {
	t.Helper()
	for _, s := range []string{sourceSecret, sourceToken, assumedSecret, assumedToken, "ext-1234"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q contains a secret value", err)
		}
	}
}

func TestAssumeRole(t *testing.T) {
	f, cfg := newSTS(t)

	ctx := context.Background()
	assumed, err := AssumeRole(ctx, cfg, AssumeRoleInput{
		RoleARN:    roleARN,
		ExternalID: "ext-1234",
		Tags:       map[string]string{"project": "berth", "env": "prod"},
		Duration:   time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	calls := f.calls("AssumeRole")
	if len(calls) != 1 {
		t.Fatalf("AssumeRole called %d times before returning, want 1 (eager)", len(calls))
	}
	want := map[string]string{
		"RoleArn":             roleARN,
		"ExternalId":          "ext-1234",
		"RoleSessionName":     SessionName("berth-" + currentUser()), // sanitising is tested in TestSessionName
		"DurationSeconds":     "3600",
		"Tags.member.1.Key":   "env",
		"Tags.member.1.Value": "prod",
		"Tags.member.2.Key":   "project",
		"Tags.member.2.Value": "berth",
	}
	for k, v := range want {
		if got := calls[0].Get(k); got != v {
			t.Errorf("AssumeRole %s = %q, want %q", k, got, v)
		}
	}

	// The new config signs with the role's credentials, and the cache
	// doesn't assume the role again for the next call.
	id, err := Identity(ctx, assumed, "role "+roleARN)
	if err != nil {
		t.Fatal(err)
	}
	if id.Account != "123456789012" || !strings.Contains(id.ARN, "assumed-role/berth-provisioner") {
		t.Errorf("identity = %+v", id)
	}
	if auth := f.auth["GetCallerIdentity"]; !strings.Contains(auth, "Credential="+assumedKeyID+"/") {
		t.Errorf("GetCallerIdentity signed with %q, want the assumed key", auth)
	}
	if n := len(f.calls("AssumeRole")); n != 1 {
		t.Errorf("AssumeRole called %d times, want 1", n)
	}
	if cfg.Credentials == assumed.Credentials {
		t.Error("AssumeRole changed the source config")
	}
}

func TestAssumeRoleErrors(t *testing.T) {
	for _, tc := range []struct {
		name       string
		in         AssumeRoleInput
		reply      [3]string // status, code, message
		kind       error
		want       []string
		noSTSCalls bool
	}{
		{
			name:  "access denied with external id",
			in:    AssumeRoleInput{RoleARN: roleARN, ExternalID: "ext-1234"},
			reply: [3]string{"403", "AccessDenied", "User: arn:aws:iam::210987654321:user/ci is not authorized to perform: sts:AssumeRole on resource: " + roleARN},
			kind:  errkind.PermissionDenied,
			want:  []string{roleARN, "external ID may be wrong", "trust policy"},
		},
		{
			name:  "access denied without external id",
			in:    AssumeRoleInput{RoleARN: roleARN},
			reply: [3]string{"403", "AccessDenied", "not authorized to perform: sts:AssumeRole"},
			kind:  errkind.PermissionDenied,
			want:  []string{roleARN, "may require an external ID"},
		},
		{
			name:  "expired source credentials",
			in:    AssumeRoleInput{RoleARN: roleARN},
			reply: [3]string{"403", "ExpiredToken", "The security token included in the request is expired"},
			kind:  errkind.PermissionDenied,
			want:  []string{roleARN, "have expired"},
		},
		{
			name:       "not a role ARN",
			in:         AssumeRoleInput{RoleARN: "arn:aws:iam::123456789012:user/alice"},
			want:       []string{"not an IAM role ARN"},
			noSTSCalls: true,
		},
		{
			name:       "account id too short",
			in:         AssumeRoleInput{RoleARN: "arn:aws:iam::1234:role/x"},
			want:       []string{"not an IAM role ARN"},
			noSTSCalls: true,
		},
		{
			name:       "bad session name",
			in:         AssumeRoleInput{RoleARN: roleARN, SessionName: "has space"},
			want:       []string{"session name"},
			noSTSCalls: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, cfg := newSTS(t)
			if tc.reply[1] != "" {
				f.errors["AssumeRole"] = tc.reply
			}
			_, err := AssumeRole(context.Background(), cfg, tc.in)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.kind != nil && !errors.Is(err, tc.kind) {
				t.Errorf("err = %v, want kind %v", err, tc.kind)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if n := len(f.calls("AssumeRole")); tc.noSTSCalls && n > 0 {
				t.Errorf("STS called %d times for invalid input", n)
			}
			noSecrets(t, err)
		})
	}
}

func TestIdentityErrors(t *testing.T) {
	profileEnv := func(k string) string { return map[string]string{"AWS_PROFILE": "prod-admin"}[k] }
	keysEnv := func(k string) string {
		return map[string]string{"AWS_ACCESS_KEY_ID": "AKIASOURCE0000000001", "AWS_SECRET_ACCESS_KEY": sourceSecret, "AWS_PROFILE": "ignored"}[k]
	}
	none := func(string) string { return "" }
	for _, tc := range []struct {
		name   string
		source string
		reply  [3]string
		creds  aws.CredentialsProvider // instead of the fake's static keys
		kind   error
		want   []string
		reject []string
	}{
		{
			name:   "expired token with --profile",
			source: CredentialSource(none, "dev"),
			reply:  [3]string{"403", "ExpiredToken", "The security token included in the request is expired"},
			kind:   errkind.PermissionDenied,
			want:   []string{`profile "dev"`, "expired", "run aws sso login --profile dev"},
		},
		{
			name:   "expired token with AWS_PROFILE",
			source: CredentialSource(profileEnv, ""),
			reply:  [3]string{"400", "ExpiredTokenException", "The security token included in the request is expired"},
			kind:   errkind.PermissionDenied,
			want:   []string{"AWS_PROFILE", "run aws sso login --profile prod-admin"},
		},
		{
			name:   "expired token from environment keys",
			source: CredentialSource(keysEnv, ""),
			reply:  [3]string{"403", "ExpiredToken", "The security token included in the request is expired"},
			kind:   errkind.PermissionDenied,
			want:   []string{"AWS_ACCESS_KEY_ID", "get fresh credentials"},
			reject: []string{"--profile"},
		},
		{
			name:   "expired SSO session before any call",
			source: CredentialSource(none, "dev"),
			creds: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{}, &ssocreds.InvalidTokenError{Err: errors.New("cached SSO token is expired, or not present")}
			}),
			kind: errkind.PermissionDenied,
			want: []string{`profile "dev"`, "run aws sso login --profile dev"},
		},
		{
			name:   "no credentials",
			source: CredentialSource(none, ""),
			creds: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{}, errors.New("failed to refresh cached credentials, no EC2 IMDS role found")
			}),
			kind: errkind.PermissionDenied,
			want: []string{"no usable credentials in the default credential chain", "--profile"},
		},
		{
			name:   "invalid key",
			source: CredentialSource(keysEnv, ""),
			reply:  [3]string{"403", "InvalidClientTokenId", "The security token included in the request is invalid."},
			kind:   errkind.PermissionDenied,
			want:   []string{"rejected the credentials from environment variables AWS_ACCESS_KEY_ID"},
		},
		{
			name:   "throttled",
			source: CredentialSource(none, "dev"),
			reply:  [3]string{"400", "Throttling", "Rate exceeded"},
			kind:   errkind.Unavailable,
			want:   []string{`profile "dev"`},
			reject: []string{"sso login"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, cfg := newSTS(t)
			if tc.reply[1] != "" {
				f.errors["GetCallerIdentity"] = tc.reply
			}
			if tc.creds != nil {
				cfg.Credentials = tc.creds
			}
			_, err := Identity(context.Background(), cfg, tc.source)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, tc.kind) {
				t.Errorf("err = %v, want kind %v", err, tc.kind)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			for _, r := range tc.reject {
				if strings.Contains(err.Error(), r) {
					t.Errorf("error %q should not say %q", err, r)
				}
			}
			noSecrets(t, err)
		})
	}
}

func TestCredentialSource(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	for _, tc := range []struct {
		env     func(string) string
		profile string
		want    string
	}{
		{env("AWS_PROFILE", "x", "AWS_ACCESS_KEY_ID", "A", "AWS_SECRET_ACCESS_KEY", "S"), "dev", `profile "dev"`},
		{env("AWS_PROFILE", "x", "AWS_ACCESS_KEY_ID", "A", "AWS_SECRET_ACCESS_KEY", "S"), "", "environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"},
		{env("AWS_PROFILE", "x", "AWS_ACCESS_KEY_ID", "A"), "", `profile "x" (from AWS_PROFILE)`}, // no secret: the SDK skips the keys
		{env("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token", "AWS_PROFILE", "x"), "", "the web identity token in AWS_WEB_IDENTITY_TOKEN_FILE"},
		{env(), "", "the default credential chain"},
	} {
		if got := CredentialSource(tc.env, tc.profile); got != tc.want {
			t.Errorf("CredentialSource(profile %q) = %q, want %q", tc.profile, got, tc.want)
		}
	}
	if p, ok := profileIn(CredentialSource(env(), `we"ird`)); !ok || p != `we"ird` {
		t.Errorf("profileIn round trip = %q, %v", p, ok)
	}
}

func TestSessionName(t *testing.T) {
	for in, want := range map[string]string{
		"berth-alice":                      "berth-alice",
		`berth-CORP\alice smith`:           "berth-CORP-alice-smith",
		"berth-jörg":                       "berth-j--rg", // two bytes, two dashes
		"a":                                "a-",
		"":                                 "--",
		"berth-" + strings.Repeat("x", 80): "berth-" + strings.Repeat("x", 58),
		"berth-a.b@c.com_+=,":              "berth-a.b@c.com_+=,",
	} {
		got := SessionName(in)
		if got != want {
			t.Errorf("SessionName(%q) = %q, want %q", in, got, want)
		}
		if !sessionNamePattern.MatchString(got) {
			t.Errorf("SessionName(%q) = %q, not valid for STS", in, got)
		}
	}
}
