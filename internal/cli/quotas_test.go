package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/awsfake"
)

// quotaFake answers Service Quotas (JSON 1.1, ServiceQuotasV20190624.*)
// for one quota, ec2 L-1216C47A, with per-region state.
type quotaFake struct {
	def     float64
	applied map[string]float64          // region -> the account's own value; absent: none
	history map[string][]map[string]any // region -> requests, as ListRequestedServiceQuotaChangeHistoryByQuota returns them
	filed   int
}

func (q *quotaFake) quota(region string, v float64) awsfake.Response {
	return awsfake.JSON(map[string]any{"Quota": map[string]any{"ServiceCode": "ec2", "QuotaCode": "L-1216C47A",
		"QuotaName": "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances", "Value": v, "Unit": "None",
		"Adjustable": true, "GlobalQuota": false, "QuotaArn": "arn:aws:servicequotas:" + region + ":123456789012:ec2/L-1216C47A"}})
}

func (q *quotaFake) register(s *awsfake.Server) {
	const svc = "servicequotas"
	s.Handle(svc, "GetAWSDefaultServiceQuota", func(r *awsfake.Request) awsfake.Response { return q.quota(r.Region, q.def) })
	s.Handle(svc, "GetServiceQuota", func(r *awsfake.Request) awsfake.Response {
		v, ok := q.applied[r.Region]
		if !ok {
			return awsfake.JSONError(400, "NoSuchResourceException", "The request failed because the specified service quota does not exist.")
		}
		return q.quota(r.Region, v)
	})
	s.Handle(svc, "ListRequestedServiceQuotaChangeHistoryByQuota", func(r *awsfake.Request) awsfake.Response {
		return awsfake.JSON(map[string]any{"RequestedQuotas": append([]map[string]any{}, q.history[r.Region]...)})
	})
	s.Handle(svc, "RequestServiceQuotaIncrease", func(r *awsfake.Request) awsfake.Response {
		for _, h := range q.history[r.Region] {
			if h["Status"] == "PENDING" || h["Status"] == "CASE_OPENED" {
				return awsfake.JSONError(400, "ResourceAlreadyExistsException", "a request for this quota is already open")
			}
		}
		q.filed++
		req := map[string]any{"Id": fmt.Sprintf("req-%d", q.filed), "ServiceCode": r.JSON["ServiceCode"], "QuotaCode": r.JSON["QuotaCode"],
			"DesiredValue": r.JSON["DesiredValue"], "Status": "PENDING", "Created": 1.7649e9}
		q.history[r.Region] = append(q.history[r.Region], req)
		return awsfake.JSON(map[string]any{"RequestedQuota": req})
	})
}

// quotaConfig writes a berth config with two AWS regions and one desired quota.
func quotaConfig(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "berth.yaml")
	body := `regions:
  - name: eu
    store: s3://releases-eu?region=eu-west-1
  - name: us
    store: s3://releases-us?region=us-east-1
quotas:
  - service: ec2
    code: L-1216C47A
    name: On-Demand vCPUs
    value: 256
`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func newQuotaFake(t *testing.T) (*awsfake.Server, *quotaFake, string) {
	s := newFake(t)
	q := &quotaFake{def: 5, applied: map[string]float64{}, history: map[string][]map[string]any{}}
	q.register(s)
	return s, q, quotaConfig(t)
}

func TestQuotasFirstRequest(t *testing.T) {
	s, q, cfg := newQuotaFake(t)
	q.applied["us-east-1"] = 64 // eu-west-1 has only the default

	code, stdout, stderr := berth(t, "--config", cfg, "dataplane", "quotas")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	wantIn(t, "stdout", squash(stdout), "eu-west-1 ec2 L-1216C47A 5 5 256 below desired On-Demand vCPUs", "us-east-1 ec2 L-1216C47A 64 5 256 below desired")
	wantIn(t, "stderr", stderr, "2 quota(s) below the desired value", "--request")
	if n := len(s.Called("servicequotas", "RequestServiceQuotaIncrease")); n != 0 {
		t.Fatalf("%d requests filed without --request", n)
	}

	// Without --yes and without a terminal, nothing is filed.
	if code, _, _ := berth(t, "--config", cfg, "dataplane", "quotas", "--request"); code != ExitUsage || q.filed != 0 {
		t.Fatalf("--request without --yes: exit %d, %d filed", code, q.filed)
	}

	code, stdout, stderr = berth(t, "--config", cfg, "dataplane", "quotas", "--request", "--yes")
	if code != 0 {
		t.Fatalf("--request: exit %d\n%s", code, stderr)
	}
	calls := s.Called("servicequotas", "RequestServiceQuotaIncrease")
	if len(calls) != 2 {
		t.Fatalf("%d requests filed, want one per region", len(calls))
	}
	for _, c := range calls {
		if c.JSON["ServiceCode"] != "ec2" || c.JSON["QuotaCode"] != "L-1216C47A" || c.JSON["DesiredValue"] != 256.0 {
			t.Errorf("%s: request %v", c.Region, c.JSON)
		}
	}
	wantIn(t, "stdout", stdout, "requested eu-west-1 ec2 L-1216C47A to 256: request req-1, PENDING\n", "requested us-east-1 ec2 L-1216C47A to 256: request req-2, PENDING\n")

	// A re-run files nothing: both requests are open.
	code, stdout, stderr = berth(t, "--config", cfg, "dataplane", "quotas", "--request", "--yes", "--output", "json")
	if code != 0 || q.filed != 2 {
		t.Fatalf("re-run: exit %d, %d filed in all\n%s", code, q.filed, stderr)
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("JSON: %v\n%s", err, stdout)
	}
	for _, st := range got {
		open, _ := st["open_request"].(map[string]any)
		if st["need"] != "open" || open["status"] != "PENDING" || st["filed_request"] != nil {
			t.Errorf("re-run status %v", st)
		}
	}
}

func TestQuotasRequestAlreadyOpen(t *testing.T) {
	s, q, cfg := newQuotaFake(t)
	q.history["eu-west-1"] = []map[string]any{
		{"Id": "old", "CaseId": "1111", "Status": "DENIED", "DesiredValue": 1000.0, "Created": 1.70e9},
		{"Id": "req-eu", "CaseId": "170000000012345", "Status": "CASE_OPENED", "DesiredValue": 256.0, "Created": 1.76e9},
	}
	code, stdout, stderr := berth(t, "--config", cfg, "dataplane", "quotas", "--request", "--yes")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	wantIn(t, "stdout", squash(stdout), "eu-west-1 ec2 L-1216C47A 5 5 256 requested 256: CASE_OPENED, case 170000000012345")
	calls := s.Called("servicequotas", "RequestServiceQuotaIncrease")
	if len(calls) != 1 || calls[0].Region != "us-east-1" {
		t.Fatalf("requests filed in %v, want us-east-1 only (eu-west-1 has one open; a denied one is not open)", regionsOf(calls))
	}
}

func TestQuotasHighEnough(t *testing.T) {
	s, q, cfg := newQuotaFake(t)
	q.applied["eu-west-1"], q.applied["us-east-1"] = 256, 1024
	code, stdout, stderr := berth(t, "--config", cfg, "dataplane", "quotas", "--request", "--yes")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	wantIn(t, "stdout", squash(stdout), "eu-west-1 ec2 L-1216C47A 256 5 256 ok", "us-east-1 ec2 L-1216C47A 1024 5 256 ok")
	if n := len(s.Called("servicequotas", "RequestServiceQuotaIncrease")); n != 0 {
		t.Fatalf("%d requests filed for quotas high enough", n)
	}
}

func TestQuotasAccessDenied(t *testing.T) {
	t.Run("reading", func(t *testing.T) {
		s, _, cfg := newQuotaFake(t)
		s.Handle("servicequotas", "GetAWSDefaultServiceQuota", func(*awsfake.Request) awsfake.Response {
			return awsfake.JSONError(400, "AccessDeniedException", "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: servicequotas:GetAWSDefaultServiceQuota")
		})
		code, _, stderr := berth(t, "--config", cfg, "dataplane", "quotas")
		if code != ExitDenied {
			t.Fatalf("exit %d, want %d\n%s", code, ExitDenied, stderr)
		}
		wantIn(t, "stderr", stderr, "eu-west-1: get the default of quota ec2 L-1216C47A", "not authorized")
	})
	t.Run("requesting", func(t *testing.T) {
		s, _, cfg := newQuotaFake(t)
		s.Handle("servicequotas", "RequestServiceQuotaIncrease", func(*awsfake.Request) awsfake.Response {
			return awsfake.JSONError(400, "AccessDeniedException", "not authorized to perform: servicequotas:RequestServiceQuotaIncrease")
		})
		code, _, stderr := berth(t, "--config", cfg, "dataplane", "quotas", "--request", "--yes")
		if code != ExitDenied {
			t.Fatalf("exit %d, want %d\n%s", code, ExitDenied, stderr)
		}
		wantIn(t, "stderr", stderr, "eu-west-1: request an increase of ec2 L-1216C47A to 256")
	})
}

func TestQuotasInput(t *testing.T) {
	s, _, cfg := newQuotaFake(t)
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"bad region", []string{"--config", cfg, "dataplane", "quotas", "--regions", "europe"}, `"europe" is not an AWS region`},
		{"yes without request", []string{"--config", cfg, "dataplane", "quotas", "--yes"}, "--yes goes with --request"},
	} {
		code, _, stderr := berth(t, tt.args...)
		if code != ExitUsage {
			t.Errorf("%s: exit %d, want %d", tt.name, code, ExitUsage)
		}
		wantIn(t, tt.name, stderr, tt.want)
	}
	noQuotas := filepath.Join(t.TempDir(), "berth.yaml")
	os.WriteFile(noQuotas, []byte("regions:\n  - name: eu\n    store: s3://releases?region=eu-west-1\n"), 0o600)
	if code, _, stderr := berth(t, "--config", noQuotas, "dataplane", "quotas"); code != ExitUsage || !strings.Contains(stderr, "no quotas in berth's config") {
		t.Errorf("no quotas: exit %d\n%s", code, stderr)
	}
	if n := len(s.Called("servicequotas", "GetAWSDefaultServiceQuota")); n != 0 {
		t.Errorf("%d calls for bad input", n)
	}
}

func regionsOf(calls []*awsfake.Request) []string {
	var out []string
	for _, c := range calls {
		out = append(out, c.Region)
	}
	return out
}

// squash collapses the runs of spaces a table aligns its columns with.
func squash(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}

// TestQuotasFiledInBetween: a request someone filed between the check and
// the request is a conflict (exit 3), not a second request.
func TestQuotasFiledInBetween(t *testing.T) {
	s, _, cfg := newQuotaFake(t)
	s.Handle("servicequotas", "RequestServiceQuotaIncrease", func(*awsfake.Request) awsfake.Response {
		return awsfake.JSONError(400, "ResourceAlreadyExistsException", "a request for this quota is already open")
	})
	code, _, stderr := berth(t, "--config", cfg, "dataplane", "quotas", "--request", "--yes")
	if code != ExitConflict {
		t.Fatalf("exit %d, want %d\n%s", code, ExitConflict, stderr)
	}
	wantIn(t, "stderr", stderr, "a request is already open")
}
