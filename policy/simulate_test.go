package policy

import (
	"errors"
	"strings"
	"testing"
)

func TestEvaluate(t *testing.T) {
	const (
		user    = "arn:aws:iam::111111111111:user/alice"
		role    = "arn:aws:iam::111111111111:role/app"
		session = "arn:aws:sts::111111111111:assumed-role/app/s1"
		vendor  = "arn:aws:iam::222222222222:role/vendor"
		target  = "arn:aws:iam::111111111111:role/target"
	)
	read := MustParse(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:Get*","Resource":"arn:aws:s3:::b/${aws:username}/*"}]}`)
	deny := MustParse(`{"Version":"2012-10-17","Statement":[{"Sid":"NoTLS","Effect":"Deny","Action":"s3:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`)
	trust := TrustPolicy(vendor, "ext-1", "berth")
	assumeAny := MustParse(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}`)
	bucketPolicy := MustParse(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:role/app"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}`)
	boundary := MustParse(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}`)
	tags := MustParse(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:TerminateInstances","Resource":"*",
		"Condition":{"StringEquals":{"aws:ResourceTag/team":"${aws:PrincipalTag/team}"},"ForAllValues:StringLike":{"aws:TagKeys":["team","env*"]},
		"IpAddress":{"aws:SourceIp":"10.0.0.0/8"},"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"},"NumericLessThanEquals":{"aws:MultiFactorAuthAge":"3600"}}}]}`)
	okCtx := map[string][]string{"aws:ResourceTag/team": {"red"}, "aws:PrincipalTag/team": {"red"}, "aws:TagKeys": {"team", "env-x"},
		"aws:SourceIp": {"10.1.2.3"}, "aws:CurrentTime": {"2026-01-01T00:00:00Z"}, "aws:MultiFactorAuthAge": {"60"}}
	with := func(k, v string) map[string][]string {
		m := map[string][]string{}
		for a, b := range okCtx {
			m[a] = b
		}
		m[k] = []string{v}
		return m
	}
	ec2 := "arn:aws:ec2:eu-west-1:111111111111:instance/i-1"
	// In a 2008-10-17 policy, or one without Version, variables are text.
	old := MustParse(`{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/${aws:username}/*"}]}`)
	noVersion := MustParse(`{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"StringEquals":{"s3:ExistingObjectTag/owner":"${aws:username}"}}}]}`)
	alice := map[string][]string{"aws:username": {"alice"}}
	for _, c := range []struct {
		name string
		req  Request
		pol  Policies
		want Outcome
	}{
		{"variable match", Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/alice/x", Principal: user, Context: map[string][]string{"aws:username": {"alice"}}}, Policies{Identity: []*Document{read}}, Allowed},
		{"variable other user", Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/bob/x", Principal: user, Context: map[string][]string{"aws:username": {"alice"}}}, Policies{Identity: []*Document{read}}, ImplicitDeny},
		{"2008 variable stays literal", Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/alice/x", Principal: user, Context: alice}, Policies{Identity: []*Document{old}}, ImplicitDeny},
		{"2008 literal text matches", Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/${aws:username}/x", Principal: user, Context: alice}, Policies{Identity: []*Document{old}}, Allowed},
		{"no version condition literal", Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k", Principal: user,
			Context: map[string][]string{"aws:username": {"alice"}, "s3:ExistingObjectTag/owner": {"alice"}}}, Policies{Identity: []*Document{noVersion}}, ImplicitDeny},
		{"no version condition literal text", Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k", Principal: user,
			Context: map[string][]string{"aws:username": {"alice"}, "s3:ExistingObjectTag/owner": {"${aws:username}"}}}, Policies{Identity: []*Document{noVersion}}, Allowed},
		{"variable missing", Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/alice/x", Principal: user}, Policies{Identity: []*Document{read}}, ImplicitDeny},
		{"explicit deny", Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/alice/x", Principal: user, Context: map[string][]string{"aws:username": {"alice"}, "aws:SecureTransport": {"false"}}}, Policies{Identity: []*Document{read, deny}}, ExplicitDeny},
		{"deny condition false", Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/alice/x", Principal: user, Context: map[string][]string{"aws:username": {"alice"}, "aws:SecureTransport": {"true"}}}, Policies{Identity: []*Document{read, deny}}, Allowed},
		{"trust with external id", Request{Action: "sts:AssumeRole", Resource: target, Principal: vendor, Context: map[string][]string{"sts:ExternalId": {"ext-1"}}}, Policies{Identity: []*Document{assumeAny}, Trust: trust}, Allowed},
		{"trust wrong external id", Request{Action: "sts:AssumeRole", Resource: target, Principal: vendor, Context: map[string][]string{"sts:ExternalId": {"ext-2"}}}, Policies{Identity: []*Document{assumeAny}, Trust: trust}, ImplicitDeny},
		{"trust no external id", Request{Action: "sts:AssumeRole", Resource: target, Principal: vendor}, Policies{Identity: []*Document{assumeAny}, Trust: trust}, ImplicitDeny},
		{"trust other principal", Request{Action: "sts:AssumeRole", Resource: target, Principal: "arn:aws:iam::222222222222:role/other", Context: map[string][]string{"sts:ExternalId": {"ext-1"}}}, Policies{Identity: []*Document{assumeAny}, Trust: trust}, ImplicitDeny},
		{"trust needs caller identity allow", Request{Action: "sts:AssumeRole", Resource: target, Principal: vendor, Context: map[string][]string{"sts:ExternalId": {"ext-1"}}}, Policies{Trust: trust}, ImplicitDeny},
		{"same account trust required", Request{Action: "sts:AssumeRole", Resource: target, Principal: role}, Policies{Identity: []*Document{assumeAny}, Trust: trust}, ImplicitDeny},
		{"bucket policy session", Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k", Principal: session}, Policies{Resource: bucketPolicy}, Allowed},
		{"bucket policy cross account", Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k", Principal: session, ResourceAccount: "333333333333"}, Policies{Resource: bucketPolicy}, ImplicitDeny},
		{"boundary limits identity", Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/alice/x", Principal: user, Context: map[string][]string{"aws:username": {"alice"}}}, Policies{Identity: []*Document{read}, Boundary: boundary}, ImplicitDeny},
		{"boundary bypass by session", Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k", Principal: session}, Policies{Resource: bucketPolicy, Boundary: boundary}, Allowed},
		{"conditions all match", Request{Action: "ec2:TerminateInstances", Resource: ec2, Principal: role, Context: okCtx}, Policies{Identity: []*Document{tags}}, Allowed},
		{"tag mismatch", Request{Action: "ec2:TerminateInstances", Resource: ec2, Principal: role, Context: with("aws:ResourceTag/team", "blue")}, Policies{Identity: []*Document{tags}}, ImplicitDeny},
		{"ip outside", Request{Action: "ec2:TerminateInstances", Resource: ec2, Principal: role, Context: with("aws:SourceIp", "192.168.0.1")}, Policies{Identity: []*Document{tags}}, ImplicitDeny},
		{"date after", Request{Action: "ec2:TerminateInstances", Resource: ec2, Principal: role, Context: with("aws:CurrentTime", "2031-01-01T00:00:00Z")}, Policies{Identity: []*Document{tags}}, ImplicitDeny},
		{"mfa too old", Request{Action: "ec2:TerminateInstances", Resource: ec2, Principal: role, Context: with("aws:MultiFactorAuthAge", "7200")}, Policies{Identity: []*Document{tags}}, ImplicitDeny},
		{"tag keys not all", Request{Action: "ec2:TerminateInstances", Resource: ec2, Principal: role, Context: func() map[string][]string {
			m := with("x", "y")
			m["aws:TagKeys"] = []string{"team", "owner"}
			return m
		}()}, Policies{Identity: []*Document{tags}}, ImplicitDeny},
		{"not action", Request{Action: "iam:CreateUser", Resource: "arn:aws:iam::111111111111:user/x", Principal: role}, Policies{Identity: []*Document{MustParse(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}]}`)}}, ImplicitDeny},
		{"not resource", Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::secret/x", Principal: role}, Policies{Identity: []*Document{MustParse(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","NotResource":"arn:aws:s3:::secret/*"}]}`)}}, ImplicitDeny},
		{"arn segments", Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k", Principal: role}, Policies{Identity: []*Document{MustParse(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/?"}]}`)}}, Allowed},
		{"null and ifexists", Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k", Principal: role}, Policies{Identity: []*Document{MustParse(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"Null":{"aws:SourceVpc":"true"},"StringEqualsIfExists":{"aws:SourceVpce":"vpce-1"},"StringNotEquals":{"aws:PrincipalOrgID":"o-1"}}}]}`)}}, Allowed},
	} {
		d, err := Evaluate(c.req, c.pol)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if d.Outcome != c.want {
			t.Errorf("%s: %s (%s %v), want %s", c.name, d.Outcome, d.Reason, d.Decisive, c.want)
		}
	}
}

func TestEvaluateRefuses(t *testing.T) {
	p := MustParse(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::*:role/x"},"Action":"s3:GetObject","Resource":"*"}]}`)
	_, err := Evaluate(Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k", Principal: "arn:aws:iam::111111111111:role/x"}, Policies{Resource: p})
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("wildcard principal: %v, want ErrUnsupported", err)
	}
	for _, r := range []Request{
		{Action: "s3:Get*", Resource: "arn:aws:s3:::b/k", Principal: "arn:aws:iam::111111111111:role/x"},
		{Action: "s3:GetObject", Resource: "bucket/k", Principal: "arn:aws:iam::111111111111:role/x"},
		{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k", Principal: "alice"},
	} {
		if _, err := Evaluate(r, Policies{}); err == nil {
			t.Errorf("Evaluate(%+v) accepted a bad request", r)
		}
	}
}

// TestEvaluateSessionTags: the trust policy is the resource policy of
// sts:TagSession too, and berth's trust allows the qualifier tag without
// relying on sts:ExternalId being in TagSession's context.
func TestEvaluateSessionTags(t *testing.T) {
	const (
		vendor = "arn:aws:iam::222222222222:role/vendor"
		target = "arn:aws:iam::111111111111:role/berth-provisioner"
	)
	assumeAny := MustParse(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["sts:AssumeRole","sts:TagSession"],"Resource":"*"}]}`)
	trust := TrustPolicy(vendor, "ext-1", "berth")
	pol := Policies{Identity: []*Document{assumeAny}, Trust: trust}
	tags := func(kv ...string) map[string][]string {
		m := map[string][]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m["aws:RequestTag/"+kv[i]] = []string{kv[i+1]}
			m["aws:TagKeys"] = append(m["aws:TagKeys"], kv[i])
		}
		return m
	}
	for _, c := range []struct {
		name      string
		principal string
		ctx       map[string][]string
		want      Outcome
	}{
		{"qualifier tag", vendor, tags("berth:qualifier", "berth"), Allowed},
		{"qualifier tag with external id", vendor, func() map[string][]string {
			m := tags("berth:qualifier", "berth")
			m["sts:ExternalId"] = []string{"ext-1"}
			return m
		}(), Allowed},
		{"other qualifier", vendor, tags("berth:qualifier", "prod"), ImplicitDeny},
		{"extra tag key", vendor, tags("berth:qualifier", "berth", "team", "x"), ImplicitDeny},
		{"no tags", vendor, nil, ImplicitDeny},
		{"other principal", "arn:aws:iam::222222222222:role/other", tags("berth:qualifier", "berth"), ImplicitDeny},
	} {
		d, err := Evaluate(Request{Action: "sts:TagSession", Resource: target, Principal: c.principal, Context: c.ctx}, pol)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if d.Outcome != c.want {
			t.Errorf("%s: %s (%s), want %s", c.name, d.Outcome, d.Reason, c.want)
		}
	}
}

// TestEvaluateMissingKeyReason: a deny because a condition key is absent
// from the request says so, and names the key.
func TestEvaluateMissingKeyReason(t *testing.T) {
	const (
		vendor = "arn:aws:iam::222222222222:role/vendor"
		target = "arn:aws:iam::111111111111:role/berth-provisioner"
	)
	assumeAny := MustParse(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:*","Resource":"*"}]}`)
	old := MustParse(`{"Version":"2012-10-17","Statement":[{"Sid":"TrustedPrincipal","Effect":"Allow","Principal":{"AWS":"` + vendor + `"},
		"Action":["sts:AssumeRole","sts:TagSession"],"Condition":{"StringEquals":{"sts:ExternalId":"ext-1"}}}]}`)
	read := MustParse(`{"Version":"2012-10-17","Statement":[{"Sid":"Tagged","Effect":"Allow","Action":"ec2:StopInstances","Resource":"*",
		"Condition":{"StringEquals":{"aws:ResourceTag/team":"red","ec2:Region":"eu-west-1"}}}]}`)
	for _, c := range []struct {
		name          string
		req           Request
		pol           Policies
		want, notWant string
	}{
		{"tag session under the external id", Request{Action: "sts:TagSession", Resource: target, Principal: vendor,
			Context: map[string][]string{"aws:RequestTag/berth:qualifier": {"berth"}}},
			Policies{Identity: []*Document{assumeAny}, Trust: old}, `condition key sts:ExternalId is not in the request context`, "cross-account"},
		{"assume role without external id", Request{Action: "sts:AssumeRole", Resource: target, Principal: vendor},
			Policies{Identity: []*Document{assumeAny}, Trust: old}, `trust Statement[0] "TrustedPrincipal"`, ""},
		{"identity policy missing tag", Request{Action: "ec2:StopInstances", Resource: "*", Principal: "arn:aws:iam::111111111111:role/app",
			Context: map[string][]string{"ec2:Region": {"eu-west-1"}}},
			Policies{Identity: []*Document{read}}, `condition key aws:ResourceTag/team is not in the request context`, ""},
		{"present key that fails is no missing key", Request{Action: "ec2:StopInstances", Resource: "*", Principal: "arn:aws:iam::111111111111:role/app",
			Context: map[string][]string{"ec2:Region": {"us-east-1"}}},
			Policies{Identity: []*Document{read}}, "no statement allows the request", "not in the request context"},
	} {
		d, err := Evaluate(c.req, c.pol)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if d.Outcome != ImplicitDeny || !strings.Contains(d.Reason, c.want) || (c.notWant != "" && strings.Contains(d.Reason, c.notWant)) {
			t.Errorf("%s: %s, reason %q; want a deny saying %q", c.name, d.Outcome, d.Reason, c.want)
		}
	}
}
