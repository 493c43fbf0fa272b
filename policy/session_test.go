package policy

import (
	"strings"
	"testing"
)

func TestSessionPolicy(t *testing.T) {
	buckets := []string{"berth-111122223333-eu-west-1", "berth-111122223333-us-east-1", "berth-111122223333-ap-southeast-2"}
	p := SessionParams{Account: "111122223333", Buckets: buckets, Prefix: "rel/app-a", ParameterPrefix: "/berth/app-a"}
	doc, err := SessionPolicy(p)
	if err != nil {
		t.Fatal(err)
	}
	if n := doc.CompactLen(); n > MaxSessionPolicyLen {
		t.Fatalf("%d characters", n)
	}
	roleWrite, err := Render(KindArtifactWrite, Params{Bucket: buckets[0], Prefix: "rel", ParameterPrefix: "/berth", Account: "111122223333", Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	// The session narrows the role: the intersection allows project A's
	// keys and refuses project B's.
	tests := []struct {
		action, resource string
		context          map[string][]string
		want             bool
	}{
		{"s3:PutObject", "arn:aws:s3:::" + buckets[0] + "/rel/app-a/1.0.0/manifest.json", nil, true},
		{"s3:GetObject", "arn:aws:s3:::" + buckets[0] + "/rel/app-a/1.0.0/manifest.json", nil, true},
		{"s3:PutObject", "arn:aws:s3:::" + buckets[0] + "/rel/app-b/1.0.0/manifest.json", nil, false},
		{"s3:PutObject", "arn:aws:s3:::" + buckets[0] + "/rel/app-ab/1.0.0/manifest.json", nil, false},
		{"s3:ListBucket", "arn:aws:s3:::" + buckets[0], map[string][]string{"s3:prefix": {"rel/app-a/1.0.0/manifest.json"}}, true},
		{"s3:ListBucket", "arn:aws:s3:::" + buckets[0], map[string][]string{"s3:prefix": {"rel/app-b/"}}, false},
		{"s3:ListBucket", "arn:aws:s3:::" + buckets[0], map[string][]string{"s3:prefix": {"rel/"}}, false},
	}
	for _, tt := range tests {
		req := Request{Action: tt.action, Resource: tt.resource, Principal: "arn:aws:iam::111122223333:role/berth-artifact-writer", Context: tt.context}
		role, err := Evaluate(req, Policies{Identity: []*Document{roleWrite.Policy}})
		if err != nil {
			t.Fatal(err)
		}
		session, err := Evaluate(req, Policies{Identity: []*Document{doc}})
		if err != nil {
			t.Fatal(err)
		}
		if got := role.Allowed() && session.Allowed(); got != tt.want {
			t.Errorf("%s on %s (%v): role %v, session %v; want %v", tt.action, tt.resource, tt.context, role.Outcome, session.Outcome, tt.want)
		}
	}
}

func TestSessionPolicySize(t *testing.T) {
	three := []string{"berth-111122223333-eu-west-1", "berth-111122223333-us-east-1", "berth-111122223333-ap-southeast-2"}
	tests := []struct {
		name    string
		p       SessionParams
		wantErr string
	}{
		{"long prefix, three regions", SessionParams{Account: "111122223333", Buckets: three, Prefix: strings.Repeat("p", 200), ParameterPrefix: "/berth/" + strings.Repeat("p", 200)}, ""},
		{"very long prefix", SessionParams{Account: "111122223333", Buckets: three, Prefix: strings.Repeat("p", 500)}, "STS accepts 2048"},
		{"no prefix", SessionParams{Buckets: three}, "prefix is required"},
		{"bad bucket", SessionParams{Buckets: []string{"Bad_Bucket"}, Prefix: "a"}, "bucket"},
		{"no bucket", SessionParams{Prefix: "a"}, "no bucket"},
	}
	for _, tt := range tests {
		doc, err := SessionPolicy(tt.p)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: err %v, want %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if n := doc.CompactLen(); n > MaxSessionPolicyLen {
			t.Errorf("%s: %d characters", tt.name, n)
		}
	}
}
