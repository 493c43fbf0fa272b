package hub

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/cfn"
	"github.com/berth-dev/berth/dataplane"
	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/hub/db"
	"github.com/berth-dev/berth/internal/awsx"
	"github.com/berth-dev/berth/policy"
)

// awsSettings is what the hub keeps in clear about an AWS data plane; its
// external ID is sealed beside it.
//
// The external ID is not a secret in AWS's model (it guards against a
// confused deputy, not an intruder), but whoever knows it can point another
// hub principal's requests at the account's roles only if that principal is
// trusted too, and knowing it helps an insider of a shared hub pose as
// another organisation. So the hub treats it as a secret: sealed at rest,
// never in a listing or a create answer, shown only to the organisation's
// admins in the bootstrap instructions (which they need to deploy the
// bootstrap), and that read is audited.
type awsSettings struct {
	Account   string      `json:"account_id"`
	Regions   []string    `json:"regions"`
	Qualifier string      `json:"qualifier"`
	Prefix    string      `json:"prefix"`
	Buckets   []awsBucket `json:"buckets,omitempty"` // after a deploy, in region order
}

type awsBucket struct {
	Region string `json:"region"`
	Name   string `json:"name"`
	KeyARN string `json:"key_arn,omitempty"`
}

func (st awsSettings) target(externalID string) dataplane.AWSTarget {
	return dataplane.AWSTarget{Account: st.Account, ExternalID: externalID, Regions: append([]string(nil), st.Regions...), Qualifier: st.Qualifier}
}

const externalIDSecret = "external_id"

var (
	accountRe   = regexp.MustCompile(`^[0-9]{12}$`)
	qualifierRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,19}$`)
)

func externalIDAAD(dataplane string) string { return "dataplane/" + dataplane + "/" + externalIDSecret }

// createAnyDataPlane registers a data plane of the kind the body names.
func (s *Server) createAnyDataPlane(w http.ResponseWriter, r *http.Request, u *db.User) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("read request body: %w: %w", err, errkind.Invalid)
	}
	var k struct {
		Kind string `json:"kind"`
	}
	_ = json.Unmarshal(body, &k) // the kind's own decode reports a malformed body
	r.Body = io.NopCloser(bytes.NewReader(body))
	if k.Kind == "aws" {
		return s.createAWSDataPlane(w, r, u)
	}
	return s.createDataPlane(w, r, u)
}

// errNoAWSPrincipal: AWS data planes trust the hub's principal, which the
// operator names at start.
var errNoAWSPrincipal = fmt.Errorf("this hub has no AWS principal: start berth server with --aws-principal ARN (the role or user whose credentials the hub runs with): %w", errkind.PreconditionFailed)

func (s *Server) createAWSDataPlane(w http.ResponseWriter, r *http.Request, u *db.User) (err error) {
	var in struct {
		Name      string   `json:"name"`
		Kind      string   `json:"kind"`
		Account   string   `json:"account_id"`
		Regions   []string `json:"regions"` // in download order
		Qualifier string   `json:"qualifier"`
		Prefix    string   `json:"prefix"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	defer func() { s.audit(r, u, "dataplane.create", "dataplane/"+truncate(in.Name, 64), err) }()
	org, err := s.orgAdmin(r.Context(), u)
	if err != nil {
		return err
	}
	if s.AWSPrincipal == "" {
		return errNoAWSPrincipal
	}
	if err := artifact.ValidateProject(in.Name); err != nil {
		msg := strings.TrimSuffix(strings.Replace(err.Error(), "project name", "name", 1), ": "+artifact.ErrInvalid.Error())
		return fmt.Errorf("data plane %s: %w", msg, errkind.Invalid)
	}
	st := awsSettings{Account: in.Account, Regions: in.Regions, Qualifier: in.Qualifier, Prefix: strings.Trim(in.Prefix, "/")}
	if st.Qualifier == "" {
		st.Qualifier = policy.DefaultQualifier
	}
	if !qualifierRe.MatchString(st.Qualifier) {
		return fmt.Errorf("qualifier %q: 1 to 20 lower-case letters, digits and hyphens, starting with a letter or digit: %w", truncate(st.Qualifier, 30), errkind.Invalid)
	}
	if _, err := cfn.DeriveNames(st.Qualifier, ""); err != nil {
		return fmt.Errorf("qualifier: %w: %w", err, errkind.Invalid)
	}
	if err := (policy.Params{Prefix: st.Prefix}).Validate(); err != nil {
		return fmt.Errorf("prefix: %w: %w", err, errkind.Invalid)
	}
	if !accountRe.MatchString(st.Account) {
		return fmt.Errorf("account_id %q: want the 12-digit ID of the AWS account the data plane lives in: %w", truncate(st.Account, 20), errkind.Invalid)
	}
	if len(st.Regions) == 0 {
		return fmt.Errorf("regions: give the AWS regions of the data plane, in download order, such as [\"eu-west-1\", \"us-east-1\"]: %w", errkind.Invalid)
	}
	ext, err := newExternalID()
	if err != nil {
		return err
	}
	t := st.target(ext)
	if err := t.Validate(); err != nil {
		// The target names CLI flags; the API's fields differ.
		msg := strings.TrimSuffix(err.Error(), ": "+errkind.Invalid.Error())
		return fmt.Errorf("%s: %w", strings.ReplaceAll(msg, "--regions", "regions"), errkind.Invalid)
	}
	st.Regions = t.Regions
	sealed, err := s.Secrets.Seal(r.Context(), []byte(ext), externalIDAAD(in.Name))
	if err != nil {
		return err
	}
	settings, _ := json.Marshal(st)
	secretsJSON, _ := json.Marshal(map[string]string{externalIDSecret: sealed})
	p := &db.DataPlane{OrgID: org.ID, Name: in.Name, Kind: "aws", Settings: string(settings), Secrets: string(secretsJSON)}
	if err := s.DB.CreateDataPlane(r.Context(), p); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": p.ID, "name": p.Name, "kind": p.Kind, "account_id": st.Account, "regions": st.Regions,
		"qualifier": st.Qualifier, "prefix": st.Prefix, "bootstrap": "/api/v1/dataplanes/" + p.Name + "/bootstrap"})
	return nil
}

// newExternalID is 160 random bits, in the characters sts:ExternalId takes.
func newExternalID() (string, error) {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make external ID: %w", err)
	}
	return "berth-" + hex.EncodeToString(b), nil
}

// awsDataPlane reads an AWS data plane's settings and opens its external ID.
func (s *Server) awsDataPlane(ctx context.Context, dp *db.DataPlane) (awsSettings, string, error) {
	var st awsSettings
	var sealed map[string]string
	if dp.Kind != "aws" {
		return st, "", fmt.Errorf("data plane %s is %s, not aws: %w", dp.Name, dp.Kind, errkind.Invalid)
	}
	if err := json.Unmarshal([]byte(dp.Settings), &st); err != nil {
		return st, "", fmt.Errorf("read data plane %s: %w", dp.Name, err)
	}
	if err := json.Unmarshal([]byte(dp.Secrets), &sealed); err != nil {
		return st, "", fmt.Errorf("read data plane %s: %w", dp.Name, err)
	}
	ext, err := s.Secrets.Open(ctx, sealed[externalIDSecret], externalIDAAD(dp.Name))
	if err != nil {
		return st, "", err
	}
	return st, string(ext), nil
}

func (s *Server) listDataPlanes(w http.ResponseWriter, r *http.Request, u *db.User) error {
	org, err := s.orgAdmin(r.Context(), u)
	if err != nil {
		return err
	}
	dps, err := s.DB.ListDataPlanes(r.Context(), org.ID)
	if err != nil {
		return err
	}
	out := []map[string]any{}
	for _, dp := range dps {
		item := map[string]any{"id": dp.ID, "name": dp.Name, "kind": dp.Kind, "created": dp.Created,
			"own": dp.Kind == "aws" && !dp.Deployed.IsZero()}
		if !dp.Deployed.IsZero() {
			item["deployed"] = dp.Deployed
		}
		// Settings hold no secrets; listed field by field all the same, so
		// a field added to them later is not published by accident.
		switch dp.Kind {
		case "aws":
			var st awsSettings
			if err := json.Unmarshal([]byte(dp.Settings), &st); err != nil {
				return fmt.Errorf("read data plane %s: %w", dp.Name, err)
			}
			item["account_id"], item["regions"], item["qualifier"], item["prefix"], item["buckets"] = st.Account, st.Regions, st.Qualifier, st.Prefix, st.Buckets
		case "s3compat":
			var st s3CompatSettings
			if err := json.Unmarshal([]byte(dp.Settings), &st); err != nil {
				return fmt.Errorf("read data plane %s: %w", dp.Name, err)
			}
			item["endpoints"], item["bucket"], item["prefix"] = st.Endpoints, st.Bucket, st.Prefix
		}
		out = append(out, item)
	}
	writeJSON(w, http.StatusOK, map[string]any{"dataplanes": out})
	return nil
}

// bootstrapInstructions tells an organisation admin how the account owner
// deploys the bootstrap that trusts this hub: the template, the equivalent
// aws cloudformation deploy command and, when the hub knows where the
// template is published, a CloudFormation quick-create link.
//
// Quick-create takes a templateURL on S3 only (no template body), and the
// hub publishes nothing itself: the bootstrap template is the same for
// every data plane of a qualifier (principal and external ID are stack
// parameters), so the operator uploads `berth template render bootstrap`
// once per berth version and passes its URL with --template-url.
func (s *Server) bootstrapInstructions(w http.ResponseWriter, r *http.Request, u *db.User) (err error) {
	name := r.PathValue("dataplane")
	defer func() { s.audit(r, u, "dataplane.bootstrap", "dataplane/"+truncate(name, 64), err) }()
	org, err := s.orgAdmin(r.Context(), u)
	if err != nil {
		return err
	}
	dp, err := s.DB.DataPlaneByName(r.Context(), org.ID, name)
	if err != nil {
		return fmt.Errorf("dataplane %q: %w", truncate(name, 64), err)
	}
	if s.AWSPrincipal == "" {
		return errNoAWSPrincipal
	}
	st, ext, err := s.awsDataPlane(r.Context(), dp)
	if err != nil {
		return err
	}
	names, err := cfn.DeriveNames(st.Qualifier, "")
	if err != nil {
		return fmt.Errorf("%w: %w", err, errkind.Invalid)
	}
	tmpl, _, err := cfn.RenderKind("bootstrap", cfn.Params{Qualifier: st.Qualifier}, cfn.YAML)
	if err != nil {
		return err
	}
	region := st.Regions[0]
	params := map[string]string{"TrustPrincipal": s.AWSPrincipal, "ExternalId": ext}
	out := map[string]any{
		"dataplane": dp.Name, "account_id": st.Account, "region": region, "stack_name": names.BootstrapStack,
		"template": string(tmpl), "parameters": params,
		"command": fmt.Sprintf("aws cloudformation deploy --region %s --stack-name %s --template-file berth-bootstrap.yaml --capabilities CAPABILITY_NAMED_IAM --parameter-overrides TrustPrincipal=%s ExternalId=%s",
			region, names.BootstrapStack, s.AWSPrincipal, ext),
		"next": "deploy the bootstrap in account " + st.Account + ", then POST /api/v1/dataplanes/" + dp.Name + "/jobs {\"kind\":\"check\"}",
	}
	if s.TemplateURL != "" {
		q := url.Values{}
		q.Set("templateURL", s.TemplateURL)
		q.Set("stackName", names.BootstrapStack)
		q.Set("param_TrustPrincipal", s.AWSPrincipal)
		q.Set("param_ExternalId", ext)
		out["quick_create_url"] = "https://console.aws.amazon.com/cloudformation/home?region=" + url.QueryEscape(region) + "#/stacks/quickcreate?" + q.Encode()
	} else {
		out["quick_create_note"] = "no quick-create link: CloudFormation takes it only with a template on S3; upload `berth template render bootstrap` and start berth server with --template-url URL"
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// CheckTemplateURL checks a --template-url: CloudFormation's quick-create
// link takes only an https URL of an object in S3.
func CheckTemplateURL(u string) error {
	p, err := url.Parse(u)
	if err != nil || p.Scheme != "https" || !strings.HasSuffix(p.Hostname(), ".amazonaws.com") || p.Path == "" || p.Path == "/" {
		return fmt.Errorf("--template-url %q: want the https URL of the bootstrap template in S3, such as https://BUCKET.s3.REGION.amazonaws.com/berth-bootstrap.yaml: %w", truncate(u, 100), errkind.Invalid)
	}
	return nil
}

// CheckAWSPrincipal asks STS who the hub's credentials belong to and
// returns a warning when that is not principal: the bootstraps the hub
// hands out trust principal, so AssumeRole would be refused. A role's
// sessions show as assumed-role/NAME/SESSION; a role's path is not in that
// ARN, so only the account and the name are compared.
func CheckAWSPrincipal(ctx context.Context, cfg aws.Config, principal string) (string, error) {
	if cfg.Region == "" && dataplane.PartitionOf(principal) == "aws" {
		cfg = cfg.Copy()
		cfg.Region = "us-east-1" // STS answers GetCallerIdentity in every region
	}
	id, err := awsx.Identity(ctx, cfg, "the hub's AWS credentials")
	if err != nil {
		return "", err
	}
	if !samePrincipal(id.ARN, principal) {
		return fmt.Sprintf("the hub's AWS credentials are %s, not --aws-principal %s: AWS data planes trust the principal, so the hub's AssumeRole calls will be refused", id.ARN, principal), nil
	}
	return "", nil
}

// samePrincipal compares a caller ARN (user, role, or a role's session) with
// a user or role ARN.
func samePrincipal(caller, principal string) bool {
	c, p := strings.SplitN(caller, ":", 6), strings.SplitN(principal, ":", 6)
	if len(c) != 6 || len(p) != 6 || c[1] != p[1] || c[4] != p[4] {
		return false
	}
	name := func(resource string) string { return resource[strings.LastIndex(resource, "/")+1:] }
	switch {
	case strings.HasPrefix(c[5], "assumed-role/") && strings.HasPrefix(p[5], "role/"):
		parts := strings.Split(c[5], "/")
		return len(parts) == 3 && parts[1] == name(p[5])
	case strings.HasPrefix(c[5], "user/") && strings.HasPrefix(p[5], "user/"):
		return name(c[5]) == name(p[5])
	}
	return false
}

// ownDataPlane enforces the organisation's setting: with
// enforce_own_dataplanes on, projects live only on data planes the
// organisation deployed through this hub, which means an AWS data plane
// with a deploy job that succeeded. An S3-compatible data plane (pasted
// keys) never counts, nor does an AWS one registered but never deployed
// by the hub, since nobody can tell what its account holds.
func (s *Server) ownDataPlane(ctx context.Context, org *db.Organisation, dp *db.DataPlane) error {
	if !org.EnforceOwnDataPlanes {
		return nil
	}
	if dp.Kind != "aws" {
		return fmt.Errorf("organisation %s allows only data planes it deployed through the hub, and %s is an S3-compatible data plane registered with pasted keys; use an AWS data plane deployed by a hub deploy job: %w",
			org.Name, dp.Name, errkind.PermissionDenied)
	}
	deployed, err := s.DB.DataPlaneDeployed(ctx, dp.ID)
	if err != nil {
		return err
	}
	if deployed.IsZero() {
		return fmt.Errorf("organisation %s allows only data planes it deployed through the hub, and %s was never deployed by it; run a plan job and approve it first: %w",
			org.Name, dp.Name, errkind.PermissionDenied)
	}
	return nil
}
