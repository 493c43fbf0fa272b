package config

import (
	"fmt"
	"math"
	"regexp"
)

// Quota is a Service Quotas value the data plane needs in each of its
// regions, such as EC2's running On-Demand standard vCPUs:
//
//	quotas:
//	  - service: ec2
//	    code: L-1216C47A
//	    name: Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances (vCPUs)
//	    value: 256
type Quota struct {
	// Service is the service code ("ec2").
	Service string `yaml:"service"`
	// Code is the quota code ("L-1216C47A").
	Code string `yaml:"code"`
	// Name is for people; Service Quotas goes by the codes.
	Name string `yaml:"name,omitempty"`
	// Value is the desired value, in the quota's unit.
	Value float64 `yaml:"value"`
}

var (
	// Service Quotas' own patterns for service and quota codes.
	serviceCodeRe = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]{1,63}$`)
	quotaCodeRe   = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]{1,128}$`)
)

func validateQuotas(qs []Quota) error {
	seen := map[string]bool{}
	for i, q := range qs {
		switch {
		case !serviceCodeRe.MatchString(q.Service):
			return fmt.Errorf("quotas[%d]: service %s is not a service code such as ec2 (aws service-quotas list-services): %w", i, quote(q.Service), ErrInvalid)
		case !quotaCodeRe.MatchString(q.Code):
			return fmt.Errorf("quotas[%d]: code %s is not a quota code such as L-1216C47A (aws service-quotas list-service-quotas --service-code %s): %w", i, quote(q.Code), q.Service, ErrInvalid)
		case !(q.Value > 0) || math.IsInf(q.Value, 0) || q.Value > 1e15:
			return fmt.Errorf("quotas[%d] (%s %s): value must be a positive number: %w", i, q.Service, q.Code, ErrInvalid)
		case seen[q.Service+"/"+q.Code]:
			return fmt.Errorf("quotas: %s %s is listed twice: %w", q.Service, q.Code, ErrInvalid)
		}
		seen[q.Service+"/"+q.Code] = true
	}
	return nil
}
