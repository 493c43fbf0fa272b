package policy

import (
	"errors"
	"strings"
)

// ARN is an Amazon Resource Name split into its fields.
type ARN struct {
	Partition, Service, Region, Account, Resource string
}

func (a ARN) String() string {
	return "arn:" + a.Partition + ":" + a.Service + ":" + a.Region + ":" + a.Account + ":" + a.Resource
}

// ParseARN splits an ARN. It accepts policy wildcards and variables in any
// field but requires the six fields and a resource.
func ParseARN(s string) (ARN, error) {
	parts := strings.SplitN(maskVariables(s), ":", 6)
	if len(parts) < 6 || parts[0] != "arn" {
		return ARN{}, errors.New("an ARN has the form arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE")
	}
	a := ARN{Partition: parts[1], Service: parts[2], Region: parts[3], Account: parts[4], Resource: parts[5]}
	switch {
	case a.Partition == "":
		return a, errors.New("the partition is empty (use aws, aws-cn or aws-us-gov)")
	case !isVariable(a.Partition) && !partitions[a.Partition] && !strings.ContainsAny(a.Partition, "*?"):
		return a, errors.New("unknown partition " + quote(a.Partition))
	case a.Service == "":
		return a, errors.New("the service is empty")
	case a.Resource == "":
		return a, errors.New("the resource is empty")
	case a.Account != "" && !isVariable(a.Account) && !strings.ContainsAny(a.Account, "*?") &&
		!accountRe.MatchString(a.Account) && a.Account != "aws":
		return a, errors.New("the account " + quote(a.Account) + " is not 12 digits")
	}
	return a, nil
}

// isVariable reports whether s contains a policy variable or CloudFormation
// substitution, whose value is not known when linting.
func isVariable(s string) bool { return strings.Contains(s, "${") }

func quote(s string) string { return `"` + s + `"` }

// maskVariables rewrites the colons inside ${...} as dots, so that
// "arn:${AWS::Partition}:s3:::b" splits into the right fields:
// ${AWS::AccountId} becomes ${AWS..AccountId}.
func maskVariables(s string) string {
	if !strings.Contains(s, "${") {
		return s
	}
	b := []byte(s)
	in := false
	for i := 0; i < len(b); i++ {
		switch {
		case !in && b[i] == '$' && i+1 < len(b) && b[i+1] == '{':
			in = true
		case in && b[i] == '}':
			in = false
		case in && b[i] == ':':
			b[i] = '.'
		}
	}
	return string(b)
}
