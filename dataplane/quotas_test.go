package dataplane_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"

	"github.com/berth-dev/berth/dataplane"
	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/internal/awsfake"
)

func quotaClients(s *awsfake.Server) func(string) dataplane.QuotaAPI {
	return func(region string) dataplane.QuotaAPI {
		return servicequotas.NewFromConfig(aws.Config{Region: region, RetryMaxAttempts: 1,
			Credentials: credentials.NewStaticCredentialsProvider(awsfake.AccessKeyID, awsfake.SecretAccessKey, "")},
			func(o *servicequotas.Options) { o.BaseEndpoint = aws.String(s.URL) })
	}
}

func quotaAnswer(code string, v float64, adjustable, global bool) awsfake.Handler {
	return func(*awsfake.Request) awsfake.Response {
		return awsfake.JSON(map[string]any{"Quota": map[string]any{"ServiceCode": "iam", "QuotaCode": code, "QuotaName": "Roles per account",
			"Value": v, "Adjustable": adjustable, "GlobalQuota": global}})
	}
}

// TestCheckQuotasGlobalFixedAndPaged: a global quota is read in the first
// region only; a quota no request can raise is "fixed" and never
// requested; open requests are found on any page of the history.
func TestCheckQuotasGlobalFixedAndPaged(t *testing.T) {
	s := awsfake.New(t)
	s.Handle("servicequotas", "GetAWSDefaultServiceQuota", func(r *awsfake.Request) awsfake.Response {
		if r.JSON["QuotaCode"] == "L-FE177D64" {
			return quotaAnswer("L-FE177D64", 1000, true, true)(r)
		}
		return quotaAnswer("L-0DA4ABF3", 10, false, false)(r)
	})
	s.Handle("servicequotas", "GetServiceQuota", func(*awsfake.Request) awsfake.Response {
		return awsfake.JSONError(400, "NoSuchResourceException", "no applied value")
	})
	s.Handle("servicequotas", "ListRequestedServiceQuotaChangeHistoryByQuota", func(r *awsfake.Request) awsfake.Response {
		if r.JSON["QuotaCode"] == "L-FE177D64" && r.JSON["NextToken"] == nil {
			return awsfake.JSON(map[string]any{"RequestedQuotas": []any{}, "NextToken": "page-2"})
		}
		if r.JSON["QuotaCode"] == "L-FE177D64" {
			return awsfake.JSON(map[string]any{"RequestedQuotas": []any{map[string]any{"Id": "r-1", "Status": "PENDING", "DesiredValue": 5000}}})
		}
		return awsfake.JSON(map[string]any{"RequestedQuotas": []any{}})
	})
	want := []dataplane.DesiredQuota{{Service: "iam", Code: "L-FE177D64", Value: 5000}, {Service: "iam", Code: "L-0DA4ABF3", Value: 20}}
	st, err := dataplane.CheckQuotas(context.Background(), quotaClients(s), []string{"eu-west-1", "us-east-1"}, want)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, x := range st {
		got[x.Region+" "+x.Code] = x.Need
	}
	wantNeed := map[string]string{"eu-west-1 L-FE177D64": dataplane.QuotaOpen, "us-east-1 L-FE177D64": dataplane.QuotaGlobal,
		"eu-west-1 L-0DA4ABF3": dataplane.QuotaFixed, "us-east-1 L-0DA4ABF3": dataplane.QuotaFixed}
	for k, v := range wantNeed {
		if got[k] != v {
			t.Errorf("%s: need %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	if n := len(s.Called("servicequotas", "GetAWSDefaultServiceQuota")); n != 3 {
		t.Errorf("%d default reads, want 3 (the global quota once)", n)
	}
	if err := dataplane.RequestQuotas(context.Background(), quotaClients(s), st); err != nil {
		t.Fatal(err) // nothing to file: a call would fail the test (no handler)
	}
}

func TestCheckQuotasUnknownCode(t *testing.T) {
	s := awsfake.New(t)
	s.Handle("servicequotas", "GetAWSDefaultServiceQuota", func(*awsfake.Request) awsfake.Response {
		return awsfake.JSONError(400, "NoSuchResourceException", "The request failed because the specified service quota does not exist.")
	})
	_, err := dataplane.CheckQuotas(context.Background(), quotaClients(s), []string{"eu-west-1"}, []dataplane.DesiredQuota{{Service: "ec2", Code: "L-00000000", Value: 1}})
	if !errors.Is(err, errkind.Invalid) {
		t.Fatalf("CheckQuotas = %v, want invalid", err)
	}
}
