package dataplane

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas/types"

	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/internal/awserr"
)

// QuotaAPI is the part of Service Quotas the quota commands call, for one
// region.
type QuotaAPI interface {
	GetServiceQuota(context.Context, *servicequotas.GetServiceQuotaInput, ...func(*servicequotas.Options)) (*servicequotas.GetServiceQuotaOutput, error)
	GetAWSDefaultServiceQuota(context.Context, *servicequotas.GetAWSDefaultServiceQuotaInput, ...func(*servicequotas.Options)) (*servicequotas.GetAWSDefaultServiceQuotaOutput, error)
	ListRequestedServiceQuotaChangeHistoryByQuota(context.Context, *servicequotas.ListRequestedServiceQuotaChangeHistoryByQuotaInput, ...func(*servicequotas.Options)) (*servicequotas.ListRequestedServiceQuotaChangeHistoryByQuotaOutput, error)
	RequestServiceQuotaIncrease(context.Context, *servicequotas.RequestServiceQuotaIncreaseInput, ...func(*servicequotas.Options)) (*servicequotas.RequestServiceQuotaIncreaseOutput, error)
}

// DesiredQuota is a quota the data plane needs: by service and quota code,
// with a name for people.
type DesiredQuota struct {
	Service string
	Code    string
	Name    string
	Value   float64
}

// What a quota needs.
const (
	QuotaOK       = "ok"       // applied >= desired
	QuotaIncrease = "increase" // below desired and no request open: --request files one
	QuotaOpen     = "open"     // below desired, a request is open
	QuotaGlobal   = "global"   // a global quota, checked in the first region
	QuotaFixed    = "fixed"    // below desired, but no request can raise it
)

// QuotaRequest is an increase request as Service Quotas reports it.
type QuotaRequest struct {
	ID      string    `json:"id"`
	CaseID  string    `json:"case_id,omitempty"`
	Status  string    `json:"status"`
	Desired float64   `json:"desired"`
	Created time.Time `json:"created,omitzero"`
}

// QuotaStatus is one quota in one region.
type QuotaStatus struct {
	Region  string  `json:"region"`
	Service string  `json:"service"`
	Code    string  `json:"code"`
	Name    string  `json:"name"`
	Applied float64 `json:"applied"`
	Default float64 `json:"default"`
	Desired float64 `json:"desired"`
	Unit    string  `json:"unit,omitempty"`
	// Adjustable is false for quotas no request can raise.
	Adjustable bool   `json:"adjustable"`
	Need       string `json:"need"`
	// Open is the request already open (PENDING or CASE_OPENED), if any.
	Open *QuotaRequest `json:"open_request,omitempty"`
	// Filed is the request RequestQuotas filed.
	Filed *QuotaRequest `json:"filed_request,omitempty"`
}

// CheckQuotas reads every desired quota in every region: the applied value
// (the default when the account never had its own), the default, and any
// open increase request. regions are in the data plane's order; client
// returns the Service Quotas client of a region.
func CheckQuotas(ctx context.Context, client func(region string) QuotaAPI, regions []string, quotas []DesiredQuota) ([]QuotaStatus, error) {
	var out []QuotaStatus
	global := map[string]string{} // service/code -> the region it was checked in
	for _, region := range regions {
		api := client(region)
		for _, q := range quotas {
			key := q.Service + "/" + q.Code
			s := QuotaStatus{Region: region, Service: q.Service, Code: q.Code, Name: q.Name, Desired: q.Value}
			if first, ok := global[key]; ok {
				s.Need = QuotaGlobal
				s.Name = q.Name + " (global: see " + first + ")"
				out = append(out, s)
				continue
			}
			in := &servicequotas.GetAWSDefaultServiceQuotaInput{ServiceCode: aws.String(q.Service), QuotaCode: aws.String(q.Code)}
			def, err := api.GetAWSDefaultServiceQuota(ctx, in)
			if err != nil {
				if awserr.Code(err) == "NoSuchResourceException" {
					return nil, fmt.Errorf("%s: Service Quotas has no quota %s of service %s: check the codes with \"aws service-quotas list-service-quotas --service-code %s\": %w",
						region, q.Code, q.Service, q.Service, errkind.Invalid)
				}
				return nil, fmt.Errorf("%s: get the default of quota %s %s: %w", region, q.Service, q.Code, awserr.Classify(err))
			}
			d := def.Quota
			s.Default, s.Applied, s.Adjustable = aws.ToFloat64(d.Value), aws.ToFloat64(d.Value), d.Adjustable
			s.Unit = aws.ToString(d.Unit)
			if s.Name == "" {
				s.Name = aws.ToString(d.QuotaName)
			}
			if d.GlobalQuota {
				global[key] = region
			}
			applied, err := api.GetServiceQuota(ctx, &servicequotas.GetServiceQuotaInput{ServiceCode: in.ServiceCode, QuotaCode: in.QuotaCode})
			switch {
			case awserr.Code(err) == "NoSuchResourceException":
				// No applied value of the account's own: the default applies.
			case err != nil:
				return nil, fmt.Errorf("%s: get quota %s %s: %w", region, q.Service, q.Code, awserr.Classify(err))
			case applied.Quota != nil && applied.Quota.Value != nil:
				s.Applied = *applied.Quota.Value
			}
			if s.Open, err = openRequest(ctx, api, q); err != nil {
				return nil, fmt.Errorf("%s: list increase requests of quota %s %s: %w", region, q.Service, q.Code, awserr.Classify(err))
			}
			switch {
			case s.Applied >= s.Desired:
				s.Need = QuotaOK
			case s.Open != nil:
				s.Need = QuotaOpen
			case !s.Adjustable:
				s.Need = QuotaFixed
			default:
				s.Need = QuotaIncrease
			}
			out = append(out, s)
		}
	}
	return out, nil
}

// openRequest returns the newest request of the quota that is still open.
func openRequest(ctx context.Context, api QuotaAPI, q DesiredQuota) (*QuotaRequest, error) {
	var open *QuotaRequest
	pages := servicequotas.NewListRequestedServiceQuotaChangeHistoryByQuotaPaginator(api,
		&servicequotas.ListRequestedServiceQuotaChangeHistoryByQuotaInput{ServiceCode: aws.String(q.Service), QuotaCode: aws.String(q.Code)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range page.RequestedQuotas {
			if r.Status != types.RequestStatusPending && r.Status != types.RequestStatusCaseOpened {
				continue
			}
			req := request(r)
			if open == nil || req.Created.After(open.Created) {
				open = req
			}
		}
	}
	return open, nil
}

func request(r types.RequestedServiceQuotaChange) *QuotaRequest {
	return &QuotaRequest{ID: aws.ToString(r.Id), CaseID: aws.ToString(r.CaseId), Status: string(r.Status),
		Desired: aws.ToFloat64(r.DesiredValue), Created: aws.ToTime(r.Created)}
}

// RequestQuotas files an increase to the desired value for every status
// whose Need is QuotaIncrease, and records it in Filed. Statuses come from
// CheckQuotas just before, so a quota with an open request is never asked
// for twice; a request someone filed in between is refused by Service
// Quotas and reported as a conflict. It stops at the first error; the
// statuses say what was filed before it.
func RequestQuotas(ctx context.Context, client func(region string) QuotaAPI, statuses []QuotaStatus) error {
	for i := range statuses {
		s := &statuses[i]
		if s.Need != QuotaIncrease {
			continue
		}
		out, err := client(s.Region).RequestServiceQuotaIncrease(ctx, &servicequotas.RequestServiceQuotaIncreaseInput{
			ServiceCode: aws.String(s.Service), QuotaCode: aws.String(s.Code), DesiredValue: aws.Float64(s.Desired)})
		if err != nil {
			if awserr.Code(err) == "ResourceAlreadyExistsException" {
				return fmt.Errorf("%s: request an increase of %s %s: a request is already open (filed since the check); run the command again to see it: %w",
					s.Region, s.Service, s.Code, errkind.Conflict)
			}
			return fmt.Errorf("%s: request an increase of %s %s to %s: %w", s.Region, s.Service, s.Code, num(s.Desired), awserr.Classify(err))
		}
		if out.RequestedQuota == nil {
			return fmt.Errorf("%s: request an increase of %s %s: Service Quotas answered without the request: %w", s.Region, s.Service, s.Code, errkind.Unavailable)
		}
		s.Filed = request(*out.RequestedQuota)
	}
	return nil
}

// PendingIncreases counts the statuses RequestQuotas would file.
func PendingIncreases(statuses []QuotaStatus) int {
	n := 0
	for _, s := range statuses {
		if s.Need == QuotaIncrease {
			n++
		}
	}
	return n
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// QuotaRegions trims and checks the regions of a quota check; errors are
// errkind.Invalid.
func QuotaRegions(regions []string) ([]string, error) {
	out := make([]string, 0, len(regions))
	seen := map[string]bool{}
	for _, r := range regions {
		r = strings.TrimSpace(r)
		switch {
		case !regionRe.MatchString(r):
			return nil, fmt.Errorf("--regions: %q is not an AWS region such as eu-west-1: %w", r, errkind.Invalid)
		case seen[r]:
			return nil, fmt.Errorf("--regions: %s is listed twice: %w", r, errkind.Invalid)
		}
		seen[r] = true
		out = append(out, r)
	}
	return out, nil
}
