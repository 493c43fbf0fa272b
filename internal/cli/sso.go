package cli

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sso"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/awsconfig"
	"github.com/berth-dev/berth/errkind"
)

func newSSOCommand(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sso",
		Short: "Set up AWS CLI profiles for IAM Identity Center (SSO)",
	}
	cmd.AddCommand(newSSOConfigCommand(g))
	return cmd
}

type ssoConfigOpts struct {
	session awsconfig.Session
	region  string
	output  string
	dryRun  bool
	now     func() time.Time
}

func newSSOConfigCommand(g *Globals) *cobra.Command {
	o := ssoConfigOpts{now: time.Now}
	cmd := &cobra.Command{
		Use:   "config [--start-url URL] [--sso-region R] [--session NAME] [--dry-run]",
		Short: "Write ~/.aws/config: an sso-session block and a profile per account and permission set you can use",
		Long: `config writes the AWS CLI's config file (AWS_CONFIG_FILE, else ~/.aws/config):
one [sso-session NAME] block (sso_start_url, sso_region,
sso_registration_scopes = sso:account:access) and one [profile P] for every
account and permission set the AWS access portal lets you use, named
ACCOUNTNAME-PERMISSIONSET in lower case (payments-dev-administratoraccess), with
sso_session, sso_account_id, sso_role_name, region (--default-region, default
the SSO region) and output (--default-output, default json).

The accounts and permission sets come from the portal, which knows the account
IDs and your assignments, with the token "aws sso login --sso-session NAME"
cached. Without a valid token, config writes the sso-session block only and
says to sign in and run it again. A permission set you reach through an approved
escalation (berth access request) appears while the escalation lasts; run config
again after it is approved.

Every section berth writes carries the comment "# managed by berth sso config
(session NAME)". berth changes or removes only sections with the mark of the
same session: your own sections, comments and blank lines stay as they are, and
a section of yours with a name berth wants is a conflict (exit 3, nothing
changed). Before changing the file berth copies it to FILE.bak-TIMESTAMP, then
replaces it at once, keeping its mode. --dry-run prints the unified diff and
changes nothing.

The start URL and region are read from the session block on later runs, so
"berth sso config" alone refreshes the profiles.`,
		Example: `  berth sso config --start-url https://my-org.awsapps.com/start --sso-region eu-west-1 --session my-org
  aws sso login --sso-session my-org
  berth sso config --session my-org --dry-run
  berth sso config --session my-org`,
		Args: args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error { return g.runSSOConfig(cmd, o) },
	}
	fl := cmd.Flags()
	fl.StringVar(&o.session.StartURL, "start-url", "", "AWS access portal URL, such as https://my-org.awsapps.com/start (default: from the session block)")
	fl.StringVar(&o.session.Region, "sso-region", "", "region of IAM Identity Center (default: from the session block)")
	fl.StringVar(&o.session.Name, "session", "berth", "name of the sso-session block; profiles name it in sso_session")
	fl.StringVar(&o.region, "default-region", "", "region written in every profile (default: the SSO region)")
	fl.StringVar(&o.output, "default-output", "json", "output format written in every profile: json, text, table, yaml")
	fl.BoolVar(&o.dryRun, "dry-run", false, "print the diff and change nothing")
	return cmd
}

func (g *Globals) runSSOConfig(cmd *cobra.Command, o ssoConfigOpts) error {
	path, err := awsconfig.Path(g.Env)
	if err != nil {
		return err
	}
	res, err := awsconfig.Configure(cmd.Context(), awsconfig.Options{
		Path: path, Session: o.session, Region: o.region, Output: o.output, Now: o.now(), DryRun: o.dryRun,
		TokenPath: func(s string) (string, error) { return awsconfig.TokenPath(g.Env, s) },
		Portal: func(region string) awsconfig.Portal {
			opts := sso.Options{Region: region}
			if u := g.endpointFor("SSO"); u != "" {
				opts.BaseEndpoint = &u
			}
			return sso.New(opts)
		},
	})
	switch {
	case errors.Is(err, errkind.PermissionDenied):
		return fmt.Errorf("%w (sign in again with: aws sso login --sso-session %s)", err, o.session.Name)
	case errors.Is(err, errkind.Invalid):
		return usageErr(err)
	case err != nil:
		return err
	}
	if g.json() {
		return g.printJSON(res)
	}
	if res.NotSignedIn != "" {
		g.info("berth: %s", res.NotSignedIn)
		g.info("berth: profiles left as they were; sign in with \"aws sso login --sso-session %s\", then run \"berth sso config --session %[1]s\" again", o.session.Name)
	}
	if o.dryRun {
		if res.Diff == "" {
			g.info("berth: %s is up to date", path)
		}
		fmt.Fprint(g.Stdout, res.Diff)
		return nil
	}
	c := res.Changes
	for _, l := range []struct {
		what  string
		names []string
	}{{"added", c.Added}, {"updated", c.Updated}, {"removed", c.Removed}} {
		for _, n := range l.names {
			fmt.Fprintf(g.Stdout, "%s profile %s\n", l.what, n)
		}
	}
	switch {
	case !res.Written:
		g.info("berth: %s is up to date (%d profile(s))", path, len(c.Unchanged))
	case res.Backup != "":
		g.info("berth: wrote %s (session %s %s; the previous file is %s)", path, o.session.Name, c.Session, res.Backup)
	default:
		g.info("berth: wrote %s (session %s %s)", path, o.session.Name, c.Session)
	}
	return nil
}

// endpointFor returns the endpoint the AWS_ENDPOINT_URL_<SERVICE> or
// AWS_ENDPOINT_URL variable sets, for clients built without the shared
// config (the portal needs no credentials and no profile).
func (g *Globals) endpointFor(service string) string {
	if u := g.Env("AWS_ENDPOINT_URL_" + strings.ToUpper(service)); u != "" {
		return u
	}
	return g.Env("AWS_ENDPOINT_URL")
}
