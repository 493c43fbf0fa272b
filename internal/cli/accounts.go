package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/org"
)

func newAccountsCommand(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "accounts",
		Short: "Check, plan, apply and audit the account catalog (accounts.yaml) of an AWS Organization",
	}
	cmd.AddCommand(newAccountsValidateCommand(g), newAccountsPlanCommand(g), newAccountsApplyCommand(g), newAccountsAuditCommand(g))
	return cmd
}

func newAccountsValidateCommand(g *Globals) *cobra.Command {
	var catalog string
	cmd := &cobra.Command{
		Use:   "validate [--catalog accounts.yaml]",
		Short: "Check the account catalog offline, as a pull-request check",
		Long: `validate reads the account catalog and checks it without calling AWS: known
keys only, unique account names and e-mail addresses, e-mail syntax, OUs that
exist in the ous tree, known account classes, budgets (above 500 USD a month
only with an approval naming who and where), no standing access to production
classes (team-prod, customer-prod, management), sane escalation durations
(15m to 12h). It prints every error at once, each as FILE:LINE:COL: message;
with --output json, a list of {file, line, column, message}.

Exit 0 when the catalog is clean, 1 when it has errors, 2 when the file cannot
be read or is not YAML. README.md (Accounts) documents the catalog;
org/catalog.schema.json is its JSON Schema for editors.`,
		Example: "  berth accounts validate\n  berth accounts validate --catalog org/accounts.yaml --output json",
		Args:    args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := os.ReadFile(catalog)
			if err != nil {
				return usageErr(fmt.Errorf("read catalog: %w", err))
			}
			c, err := org.Parse(catalog, data)
			var es org.Errors
			var se *org.SyntaxError
			switch {
			case errors.As(err, &se):
				// Kind errkind.Invalid: exit 2, without the --help hint
				// that would not help with a YAML mistake.
				if g.json() {
					return g.jsonResult([]org.Error{{File: se.File, Line: se.Line, Message: se.Msg}}, err)
				}
				return err
			case errors.As(err, &es):
				if g.json() {
					return g.jsonResult(es, err)
				}
				for _, e := range es {
					fmt.Fprintln(g.Stdout, e.String())
				}
				g.info("berth: %s: %d error(s)", catalog, len(es))
				return silence(err)
			case err != nil:
				return err
			}
			if g.json() {
				return g.printJSON([]org.Error{})
			}
			g.info("berth: %s: %d account(s), %d OU(s), no errors", catalog, len(c.Accounts), c.CountOUs())
			return nil
		},
	}
	cmd.Flags().StringVar(&catalog, "catalog", "accounts.yaml", "the account catalog to check")
	return cmd
}
