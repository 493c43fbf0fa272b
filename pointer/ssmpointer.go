package pointer

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/berth-dev/berth/internal/awserr"
	"github.com/berth-dev/berth/store"
)

// SSMAPI is the part of the SSM client the pointer uses.
type SSMAPI interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, opts ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
	PutParameter(ctx context.Context, in *ssm.PutParameterInput, opts ...func(*ssm.Options)) (*ssm.PutParameterOutput, error)
}

// SSM keeps the pointers in the parameters PREFIX/PROJECT/latest and
// PREFIX/PROJECT/prerelease/latest. SSM has no
// conditional write, so Advance reads, compares, writes and reads back; two
// stagers racing within one round trip can still leave the lower version, a
// window the in-store pointer does not have.
type SSM struct {
	Client SSMAPI
	Prefix string // "/berth/releases"
	Region string // for messages
}

func (p SSM) param(project, name string) (string, error) {
	path, err := path(name)
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(p.Prefix, "/") + "/" + project + "/" + path, nil
}

func (p SSM) String() string { return fmt.Sprintf("ssm:%s (%s)", p.Prefix, p.Region) }

func (p SSM) Get(ctx context.Context, project, pointer string) (string, error) {
	name, err := p.param(project, pointer)
	if err != nil {
		return "", err
	}
	out, err := p.Client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	if err != nil {
		var nf *ssmtypes.ParameterNotFound
		if errors.As(err, &nf) {
			return "", fmt.Errorf("get parameter %s in %s: %w", name, p.Region, store.ErrNotFound)
		}
		return "", fmt.Errorf("get parameter %s in %s: %w", name, p.Region, awserr.Classify(err))
	}
	if out.Parameter == nil || aws.ToString(out.Parameter.Value) == "" {
		return "", fmt.Errorf("get parameter %s in %s: empty value: %w", name, p.Region, store.ErrInvalid)
	}
	return aws.ToString(out.Parameter.Value), nil
}

func (p SSM) Advance(ctx context.Context, project, pointer, version string, cmp func(a, b string) int, force bool) (bool, string, error) {
	name, err := p.param(project, pointer)
	if err != nil {
		return false, "", err
	}
	for range maxAttempts {
		current, err := p.Get(ctx, project, pointer)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return false, "", err
		}
		if current == version || (current != "" && !force && cmp(version, current) <= 0) {
			return false, current, nil
		}
		_, err = p.Client.PutParameter(ctx, &ssm.PutParameterInput{
			Name:      aws.String(name),
			Value:     aws.String(version),
			Type:      ssmtypes.ParameterTypeString,
			Overwrite: aws.Bool(current != ""),
		})
		var exists *ssmtypes.ParameterAlreadyExists
		if errors.As(err, &exists) {
			continue // created concurrently; compare again
		}
		if err != nil {
			return false, current, fmt.Errorf("put parameter %s in %s: %w", name, p.Region, awserr.Classify(err))
		}
		// Read back: a concurrent writer may have set a higher version
		// between our read and write; if we moved it backwards, retry.
		after, err := p.Get(ctx, project, pointer)
		if err == nil && after != version && !force && cmp(version, after) > 0 {
			continue
		}
		return true, current, nil
	}
	return false, "", fmt.Errorf("put parameter %s in %s: too much contention: %w", name, p.Region, store.ErrUnavailable)
}
