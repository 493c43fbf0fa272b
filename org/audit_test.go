package org_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/awsfake"
	"github.com/berth-dev/berth/org"
)

// auditWorld adds to world an account outside the catalog, a budget above
// the catalog's, and IAM users in payments-prod (team-prod).
func auditWorld(t *testing.T, h *harness) {
	h.org.Accounts = append(h.org.Accounts, &awsfake.OrgAccount{ID: "444444444444", Name: "shadow-it", Email: "shadow@acme.example", State: "ACTIVE", Parent: "r-root"})
	// Budgets made outside berth count too, in either filter form.
	delete(h.org.Budgets, "berth-payments-prod")
	h.org.Budgets["payments-prod-ec2"] = &awsfake.OrgBudget{Amount: "3000.0", Linked: []string{"222222222222"}, Expression: true}
	signed := func(r *awsfake.Request) {
		if r.AccessKeyID != awsfake.AssumedKeyID {
			t.Errorf("iam %s signed with %s, not the assumed role's key", r.Action, r.AccessKeyID)
		}
	}
	h.srv.Handle("iam", "ListUsers", func(r *awsfake.Request) awsfake.Response {
		signed(r)
		return awsfake.Query("iam", "ListUsers", `<Users>`+
			`<member><Path>/</Path><UserName>deploy</UserName><UserId>AIDADEPLOY</UserId><Arn>arn:aws:iam::222222222222:user/deploy</Arn><CreateDate>2025-01-01T00:00:00Z</CreateDate></member>`+
			`<member><Path>/</Path><UserName>ci</UserName><UserId>AIDACI</UserId><Arn>arn:aws:iam::222222222222:user/ci</Arn><CreateDate>2025-01-01T00:00:00Z</CreateDate></member>`+
			`</Users><IsTruncated>false</IsTruncated>`)
	})
	keys := map[string][]string{
		"deploy": {"AKIASTALE", "AKIAFRESH", "AKIANEVERUSEDNEW", "AKIAINACTIVE"},
	}
	h.srv.Handle("iam", "ListAccessKeys", func(r *awsfake.Request) awsfake.Response {
		signed(r)
		var b strings.Builder
		for _, k := range keys[r.Form.Get("UserName")] {
			status := "Active"
			if k == "AKIAINACTIVE" {
				status = "Inactive"
			}
			fmt.Fprintf(&b, `<member><UserName>%s</UserName><AccessKeyId>%s</AccessKeyId><Status>%s</Status><CreateDate>2026-11-01T00:00:00Z</CreateDate></member>`, r.Form.Get("UserName"), k, status)
		}
		return awsfake.Query("iam", "ListAccessKeys", `<AccessKeyMetadata>`+b.String()+`</AccessKeyMetadata><IsTruncated>false</IsTruncated>`)
	})
	h.srv.Handle("iam", "GetAccessKeyLastUsed", func(r *awsfake.Request) awsfake.Response {
		signed(r)
		used := map[string]string{"AKIASTALE": "2026-01-01T00:00:00Z", "AKIAFRESH": "2026-11-30T00:00:00Z"}[r.Form.Get("AccessKeyId")]
		inner := `<Region>N/A</Region><ServiceName>N/A</ServiceName>`
		if used != "" {
			inner = `<LastUsedDate>` + used + `</LastUsedDate><Region>us-east-1</Region><ServiceName>s3</ServiceName>`
		}
		return awsfake.Query("iam", "GetAccessKeyLastUsed", `<UserName>deploy</UserName><AccessKeyLastUsed>`+inner+`</AccessKeyLastUsed>`)
	})
}

func TestAudit(t *testing.T) {
	h := newHarness(t, world())
	auditWorld(t, h)
	fs, err := h.runner.Audit(context.Background(), h.cat, org.AuditOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fs {
		got = append(got, f.Kind+" "+f.Account+" "+f.Subject)
	}
	want := []string{
		"not-in-catalog acme-management ",
		"budget-above-catalog payments-prod payments-prod-ec2",
		"iam-user payments-prod deploy",
		"stale-access-key payments-prod deploy/AKIASTALE",
		"iam-user payments-prod ci",
		"not-in-catalog shadow-it ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Only the production account is entered, with a read-only session.
	assumed := h.srv.Called("sts", "AssumeRole")
	if len(assumed) != 1 || assumed[0].Form.Get("RoleArn") != "arn:aws:iam::222222222222:role/OrganizationAccountAccessRole" {
		t.Fatalf("AssumeRole calls %v", assumed)
	}
	if pol := assumed[0].Form.Get("Policy"); !strings.Contains(pol, "iam:ListUsers") || strings.Contains(pol, `"*"],"Resource`) {
		t.Errorf("session policy %s", pol)
	}
	if !strings.Contains(fs[3].Detail, "last used 2026-01-01 (335 days ago)") {
		t.Errorf("stale key detail: %s", fs[3].Detail)
	}
}

// TestAuditUnreachableAccount: an account whose role cannot be assumed is
// a finding, and the audit goes on.
func TestAuditUnreachableAccount(t *testing.T) {
	o := world()
	o.RoleWaits = 100
	h := newHarness(t, o)
	fs, err := h.runner.Audit(context.Background(), h.cat, org.AuditOptions{Now: now, Role: "berth-audit"})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, f := range fs {
		if f.Kind == org.FindingAuditFailed && f.Account == "payments-prod" && strings.Contains(f.Detail, "arn:aws:iam::222222222222:role/berth-audit") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no not-audited finding for payments-prod: %+v", fs)
	}
}

// TestAuditManagementAccount: the management account has no access role
// to assume; audit reads its IAM with the caller's own credentials.
func TestAuditManagementAccount(t *testing.T) {
	h := newHarness(t, world())
	text := strings.Replace(string(h.text), "access_classes:", `  - name: acme-management
    email: aws+management@acme.example
    ou: Root
    owner: platform
    class: management
access_classes:`, 1)
	cat, err := org.Parse("accounts.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	h.org.Budgets["berth-acme-management"] = &awsfake.OrgBudget{Amount: "100.0", Linked: []string{management}}
	h.srv.Handle("iam", "ListUsers", func(r *awsfake.Request) awsfake.Response {
		if r.AccessKeyID == awsfake.AssumedKeyID {
			return awsfake.Query("iam", "ListUsers", `<Users/><IsTruncated>false</IsTruncated>`)
		}
		if r.AccessKeyID != awsfake.AccessKeyID {
			t.Errorf("ListUsers signed with %s", r.AccessKeyID)
		}
		return awsfake.Query("iam", "ListUsers", `<Users><member><Path>/</Path><UserName>root-admin</UserName><UserId>AIDAROOT</UserId><Arn>arn:aws:iam::111111111111:user/root-admin</Arn><CreateDate>2025-01-01T00:00:00Z</CreateDate></member></Users><IsTruncated>false</IsTruncated>`)
	})
	h.srv.Handle("iam", "ListAccessKeys", func(r *awsfake.Request) awsfake.Response {
		return awsfake.Query("iam", "ListAccessKeys", `<AccessKeyMetadata/><IsTruncated>false</IsTruncated>`)
	})
	fs, err := h.runner.Audit(context.Background(), cat, org.AuditOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fs {
		got = append(got, f.Kind+" "+f.Account+" "+f.Subject)
	}
	want := "iam-user acme-management root-admin"
	if strings.Join(got, "\n") != want {
		t.Fatalf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), want)
	}
	for _, c := range h.srv.Called("sts", "AssumeRole") {
		if strings.Contains(c.Form.Get("RoleArn"), management) {
			t.Errorf("assumed a role in the management account: %s", c.Form.Get("RoleArn"))
		}
	}
}
