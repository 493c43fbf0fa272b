package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/cfn"
	"github.com/berth-dev/berth/policy"
)

// errLintFindings: lint found a finding at or above --fail-on (exit 1).
var errLintFindings = errors.New("policy lint found errors")

func newPolicyCommand(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Render, lint and simulate least-privilege IAM policies",
	}
	cmd.AddCommand(newPolicyRenderCommand(g), newPolicyLintCommand(g), newPolicySimulateCommand(g))
	return cmd
}

func registerPolicyParams(cmd *cobra.Command, p *policy.Params) {
	fl := cmd.Flags()
	fl.StringVar(&p.Bucket, "bucket", "", "bucket name")
	fl.StringVar(&p.Prefix, "prefix", "", "artifact key prefix in the bucket")
	fl.StringVar(&p.ParameterPrefix, "parameter-prefix", "", "SSM parameter prefix, such as /berth")
	fl.StringVar(&p.Account, "account", "", "AWS account ID (12 digits)")
	fl.StringVar(&p.Region, "region", "", "AWS region")
	fl.StringVar(&p.Partition, "partition", "aws", "AWS partition: aws, aws-cn or aws-us-gov")
	fl.StringVar(&p.KMSKeyARN, "kms-key", "", "KMS key ARN the bucket is encrypted with")
	fl.StringVar(&p.TrustPrincipal, "trust-principal", "", "provisioner/ops: the one principal ARN allowed to assume the role")
	fl.StringVar(&p.ExternalID, "external-id", "", "provisioner/ops: the sts:ExternalId the principal must present")
	fl.StringVar(&p.PermissionsBoundary, "permissions-boundary", "", "provisioner/ops: permissions boundary policy ARN")
	fl.BoolVar(&p.Administrator, "administrator", false, "provisioner: attach AdministratorAccess instead of least privilege (not recommended)")
	fl.StringVar(&p.Qualifier, "qualifier", "", "provisioner/ops: name prefix of the bootstrap and data plane resources")
}

func newPolicyRenderCommand(g *Globals) *cobra.Command {
	var p policy.Params
	var ci policy.CITrustParams
	var out string
	kinds := make([]string, 0, len(policy.Kinds))
	for _, k := range policy.Kinds {
		kinds = append(kinds, string(k))
	}
	kinds = append(kinds, string(policy.KindCITrust))
	cmd := &cobra.Command{
		Use:   "render KIND [flags] [-o FILE]",
		Short: "Print a least-privilege IAM policy: " + strings.Join(kinds, ", "),
		Long: `render prints an IAM policy document for one of berth's roles:

  artifact-read   download artifacts (deploy jobs): S3 reads under the prefix, SSM reads
  artifact-write  stage artifacts (CI): reads, plus writes of data, manifests and pointers;
                  no DeleteObject
  configure       read and change the bucket-name parameter
  cache-read      berth cache restore: read entries and archives in the cache bucket (--bucket)
  cache-write     berth cache save: cache-read, plus create-only puts of entries and archives
  backend         a bucket-scoped tool backend (S3, logs, secrets, tag-conditioned EC2,
                  IAM names derived from the bucket)
  provisioner     the bootstrap role that deploys berth's data plane stack (a role
                  definition with its trust policy, pinned to --trust-principal and
                  --external-id)
  ops             a read-only bootstrap role for inspection and drift detection

policy/ACTIONS.md in the source lists every action each kind grants and why.`,
		Example: `  berth policy render artifact-write --bucket releases-eu --prefix releases --parameter-prefix /berth
  berth policy render provisioner --trust-principal arn:aws:iam::111122223333:role/vendor \
      --external-id 7d1f... --qualifier berth -o provisioner.json`,
		Args:      args(1, "KIND"),
		ValidArgs: kinds,
		RunE: func(cmd *cobra.Command, a []string) error {
			if policy.Kind(a[0]) == policy.KindCITrust {
				return g.renderCITrust(cmd, ci, p, out)
			}
			if err := refuseCITrustFlags(cmd, a[0]); err != nil {
				return err
			}
			res, err := policy.Render(policy.Kind(a[0]), p)
			if err != nil {
				return usageErr(err)
			}
			for _, w := range res.Warnings {
				fmt.Fprintf(g.Stderr, "berth: warning: %s\n", w)
			}
			return g.writeOut(out, res.JSON())
		},
	}
	registerPolicyParams(cmd, &p)
	registerCITrustFlags(cmd, &ci)
	cmd.Long += ciTrustHelp
	cmd.Example += ciTrustExample
	cmd.Flags().StringVarP(&out, "output-file", "o", "", "write to FILE instead of stdout")
	return cmd
}

// writeOut writes data to path, or stdout when path is empty.
func (g *Globals) writeOut(path string, data []byte) error {
	if path == "" {
		_, err := g.Stdout.Write(data)
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return usageErr(fmt.Errorf("write %s: %w", path, err))
	}
	g.info("berth: wrote %s", path)
	return nil
}

func newPolicyLintCommand(g *Globals) *cobra.Command {
	var failOn string
	cmd := &cobra.Command{
		Use:   "lint FILE... [--fail-on error|warning]",
		Short: "Check IAM policies and CloudFormation templates for the usual mistakes",
		Long: `lint reads IAM policy documents (JSON or YAML) and CloudFormation templates and
reports, with a severity, an id and a hint: wildcard actions or resources,
AdministratorAccess (inline or attached: an error either way), NotAction with
Allow, trust that is open (Principal "*", or a cross-account or federated trust
whose conditions do not narrow it, such as sts:ExternalId StringLike "*"), GitHub
OIDC trust without a sub condition, iam:PassRole on every role, S3 object actions
on bucket ARNs and the reverse, unknown actions and condition keys (aws:ExternalId
where sts:ExternalId was meant; OIDC provider keys such as
token.actions.githubusercontent.com:sub are known), unknown condition operators,
malformed ARNs, size limits, and syntax errors with line numbers. In a template every embedded policy,
trust policy and managed policy ARN is checked.

Exit 1 when a finding of severity error exists (with --fail-on warning, of
severity warning or error); exit 2 when a file cannot be read or parsed.`,
		Example: "  berth policy lint bootstrap.yaml role-policy.json\n  berth policy lint *.json --output json\n  berth policy lint --fail-on warning policies/*.json   # CI: warnings fail too",
		Args: func(cmd *cobra.Command, a []string) error {
			if len(a) == 0 {
				return usageErr(errors.New("lint takes one or more FILEs"))
			}
			if failOn != string(policy.SeverityError) && failOn != string(policy.SeverityWarning) {
				return usageErr(fmt.Errorf("--fail-on %q: use error or warning", failOn))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, files []string) error {
			type fileFindings struct {
				File     string           `json:"file"`
				Findings []policy.Finding `json:"findings"`
			}
			var all []fileFindings
			hasErrors, malformed := false, false
			for _, f := range files {
				data, err := os.ReadFile(f)
				if err != nil {
					return usageErr(fmt.Errorf("read %s: %w", f, err))
				}
				fs, err := policy.Lint(f, data)
				if err != nil {
					return usageErr(fmt.Errorf("lint %s: %w", f, err))
				}
				if fs == nil {
					fs = []policy.Finding{}
				}
				for _, x := range fs {
					if x.ID == "parse-error" {
						malformed = true
					}
				}
				hasErrors = hasErrors || policy.AtLeast(fs, policy.Severity(failOn))
				all = append(all, fileFindings{File: f, Findings: fs})
			}
			if g.json() {
				if err := g.printJSON(all); err != nil {
					return err
				}
			} else {
				n := 0
				for _, ff := range all {
					for _, x := range ff.Findings {
						fmt.Fprintln(g.Stdout, x.String())
						n++
					}
				}
				if n == 0 {
					g.info("berth: %d file(s), no findings", len(files))
				}
			}
			switch {
			case malformed:
				return silence(usageErr(errors.New("a file could not be parsed")))
			case hasErrors:
				return silence(errLintFindings)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&failOn, "fail-on", string(policy.SeverityError), "exit 1 on findings of this severity or worse: error or warning")
	return cmd
}

func newPolicySimulateCommand(g *Globals) *cobra.Command {
	var identity []string
	var resourcePolicy, boundary, trust, action, resource, principal, resourceAccount string
	var contextPairs []string
	cmd := &cobra.Command{
		Use:   "simulate --policy FILE... --action A --resource ARN [flags]",
		Short: "Evaluate policies offline for one request: allowed or denied, and why",
		Long: `simulate evaluates IAM policy evaluation logic offline: identity policies, a
resource policy, a permissions boundary and a role trust policy, for one request.
--policy also takes a role file as "policy render provisioner|ops" prints it: its
trust policy decides sts:AssumeRole and sts:TagSession, its inline policies (and
AdministratorAccess, if attached) the requests of its sessions; a permissions
boundary it names needs its document with --boundary. A policy with Version
2008-10-17 (or none) keeps policy variables as literal text, as IAM does.
It prints the decision and the statements that decided it. It supports
Allow/Deny, Action/NotAction, Resource/NotResource with wildcards, the string,
ARN, bool, null, numeric, date and IP operators, IfExists, ForAnyValue/
ForAllValues and policy variables, and refuses (exit 2) what it does not model
(SCPs, session policies) rather than guess.

Exit 0 when allowed, 1 when denied.`,
		Example: `  berth policy simulate --policy write.json --action s3:PutObject \
      --resource arn:aws:s3:::releases/app/1.0.0/manifest.json --principal arn:aws:iam::111122223333:role/ci
  berth policy simulate --policy none.json --trust-policy trust.json --action sts:AssumeRole \
      --resource arn:aws:iam::111122223333:role/berth-provisioner \
      --principal arn:aws:iam::444455556666:role/vendor --context sts:ExternalId=7d1f`,
		Args: args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if action == "" || resource == "" || (len(identity) == 0 && resourcePolicy == "" && trust == "") {
				return usageErr(errors.New("give --action, --resource and at least one of --policy, --resource-policy, --trust-policy"))
			}
			var pol policy.Policies
			var roleTrust, roleBoundary string // file and ARN taken from a role file
			for _, f := range identity {
				data, err := os.ReadFile(f)
				if err != nil {
					return usageErr(fmt.Errorf("read %s: %w", f, err))
				}
				role, err := policy.ParseRole(data)
				if errors.Is(err, policy.ErrNotRole) {
					d, err := policy.Parse(data)
					if err != nil {
						return usageErr(fmt.Errorf("parse %s: %w", f, err))
					}
					pol.Identity = append(pol.Identity, d)
					continue
				}
				if err != nil {
					return usageErr(fmt.Errorf("parse %s: %w", f, err))
				}
				// A role file, as policy render provisioner|ops prints it:
				// its trust policy decides sts:AssumeRole and TagSession,
				// its policies the requests of its sessions.
				if roleTrust != "" {
					return usageErr(fmt.Errorf("%s and %s are both roles: simulate one role at a time", roleTrust, f))
				}
				roleTrust, roleBoundary = f, role.PermissionsBoundary
				if trust == "" {
					pol.Trust = role.Trust
				}
				if policy.TrustApplies(action) {
					continue // the caller's policies, not the role's, are identity policies here
				}
				pol.Identity = append(pol.Identity, role.Policies...)
				for _, arn := range role.ManagedPolicyARNs {
					if a, err := policy.ParseARN(arn); err != nil || arn != policy.AdministratorAccessARN(a.Partition) {
						return usageErr(fmt.Errorf("%s attaches the managed policy %s, whose document is not in the file: pass it with another --policy FILE", f, arn))
					}
					pol.Identity = append(pol.Identity, policy.AdministratorAccessDocument())
				}
			}
			if roleBoundary != "" && boundary == "" && !policy.TrustApplies(action) {
				return usageErr(fmt.Errorf("%s has the permissions boundary %s, whose document is not in the file: pass it with --boundary FILE", roleTrust, roleBoundary))
			}
			for _, x := range []struct {
				file string
				dst  **policy.Document
			}{{resourcePolicy, &pol.Resource}, {boundary, &pol.Boundary}, {trust, &pol.Trust}} {
				if x.file == "" {
					continue
				}
				d, err := readPolicy(x.file)
				if err != nil {
					return err
				}
				*x.dst = d
			}
			req := policy.Request{Action: action, Resource: resource, Principal: principal, ResourceAccount: resourceAccount, Context: map[string][]string{}}
			for _, kv := range contextPairs {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return usageErr(fmt.Errorf("--context %q: write KEY=VALUE", kv))
				}
				req.Context[k] = append(req.Context[k], v)
			}
			if principal != "" {
				if _, ok := req.Context["aws:PrincipalArn"]; !ok {
					req.Context["aws:PrincipalArn"] = []string{principal}
				}
			}
			d, err := policy.Evaluate(req, pol)
			if err != nil {
				return usageErr(fmt.Errorf("simulate: %w", err))
			}
			if g.json() {
				if err := g.printJSON(map[string]any{"decision": d.Outcome, "allowed": d.Allowed(), "decisive": d.Decisive, "reason": d.Reason}); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(g.Stdout, "%s: %s on %s\n", d.Outcome, action, resource)
				for _, s := range d.Decisive {
					fmt.Fprintf(g.Stdout, "  decided by %s\n", s)
				}
				if d.Reason != "" {
					fmt.Fprintf(g.Stdout, "  %s\n", d.Reason)
				}
			}
			if !d.Allowed() {
				return errNo
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&identity, "policy", nil, "identity policy FILE or role FILE (from policy render), repeatable")
	fl.StringVar(&resourcePolicy, "resource-policy", "", "resource policy FILE (bucket or key policy)")
	fl.StringVar(&boundary, "boundary", "", "permissions boundary FILE")
	fl.StringVar(&trust, "trust-policy", "", "role trust policy FILE (for sts:AssumeRole requests)")
	fl.StringVar(&action, "action", "", "action, such as s3:GetObject")
	fl.StringVar(&resource, "resource", "", "resource ARN, or * for actions without resources")
	fl.StringVar(&principal, "principal", "", "caller ARN")
	fl.StringVar(&resourceAccount, "resource-account", "", "account that owns the resource, when the ARN does not say")
	fl.StringArrayVar(&contextPairs, "context", nil, "condition key as KEY=VALUE, repeatable (repeat a key for several values)")
	return cmd
}

func readPolicy(file string) (*policy.Document, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, usageErr(fmt.Errorf("read %s: %w", file, err))
	}
	d, err := policy.Parse(data)
	if err != nil {
		return nil, usageErr(fmt.Errorf("parse %s: %w", file, err))
	}
	return d, nil
}

func newTemplateCommand(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "template",
		Short: "Render CloudFormation templates: the regional data plane and the account bootstrap",
	}
	var p cfn.Params
	var format, out string
	var nf networkFlags
	var af accepterFlags
	render := &cobra.Command{
		Use:   "render dataplane|bootstrap|network|peering-accepter [flags] [--format yaml|json] [-o FILE]",
		Short: "Print a CloudFormation template",
		Long: `render prints one of berth's CloudFormation templates:

  dataplane  one region's data plane: a bucket with public access blocked, SSE-KMS
             with a new or given key, versioning, a TLS-only bucket policy, lifecycle
             rules, the bucket-name parameter, the artifact-read, artifact-write and
             configure managed policies, a cache bucket (no versioning, entries
             expire after --cache-days, default 14) with cache-read and cache-write
             policies, and outputs
  bootstrap  the account bootstrap: provisioner and ops roles trusted by one
             principal with an external ID (stack parameters), an optional
             permissions boundary, and a version parameter and output
  network    the data plane VPC (--cidr, --azs, or --file): subnets across AZs, an S3
             gateway endpoint, peering requester side, PrivateLink (see "berth
             dataplane network")
  peering-accepter  for the peer's account: a role only the data plane account's
             provisioner may assume to accept peerings of --vpc, and routes to
             --dataplane-cidr on each --route-table once PeeringConnectionId is set

Names derive from --qualifier, with IAM and S3 length checks.`,
		Example:   "  berth template render dataplane --qualifier berth --prefix releases --format yaml\n  berth template render bootstrap --qualifier acme -o bootstrap.json --format json",
		Args:      args(1, "dataplane, bootstrap, network or peering-accepter"),
		ValidArgs: []string{"dataplane", "bootstrap", "network", "peering-accepter"},
		RunE: func(cmd *cobra.Command, a []string) error {
			if format != "yaml" && format != "json" {
				return usageErr(fmt.Errorf("--format %q: use yaml or json", format))
			}
			if a[0] == "network" || a[0] == "peering-accepter" {
				return g.renderNetworkTemplate(a[0], p.Qualifier, &nf, &af, cfn.Format(format), out)
			}
			data, warnings, err := cfn.RenderKind(a[0], p, cfn.Format(format))
			if err != nil {
				return usageErr(err)
			}
			for _, w := range warnings {
				fmt.Fprintf(g.Stderr, "berth: warning: %s\n", w)
			}
			return g.writeOut(out, data)
		},
	}
	fl := render.Flags()
	fl.StringVar(&p.Qualifier, "qualifier", "", "prefix of every resource name (default berth)")
	fl.StringVar(&p.Prefix, "prefix", "", "artifact key prefix in the bucket")
	fl.StringVar(&p.ParameterPrefix, "parameter-prefix", "", "SSM parameter prefix (default /QUALIFIER)")
	fl.StringVar(&p.KMSKeyARN, "kms-key", "", "dataplane: use this KMS key instead of creating one")
	fl.IntVar(&p.CacheExpirationDays, "cache-days", 0, "dataplane: cache entries expire after this many days (default 14)")
	fl.BoolVar(&p.Administrator, "administrator", false, "bootstrap: give the provisioner AdministratorAccess (not recommended)")
	fl.StringVar(&p.PermissionsBoundary, "permissions-boundary", "", "bootstrap: permissions boundary ARN for both roles")
	fl.StringVar(&format, "format", "yaml", "yaml or json")
	fl.StringVarP(&out, "output-file", "o", "", "write to FILE instead of stdout")
	nf.register(fl)
	af.register(fl)
	cmd.AddCommand(render)
	return cmd
}
