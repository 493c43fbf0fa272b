package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/hub/hubclient"
)

func newProjectCommand(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "project",
		Short: "Show and change a project's settings on the hub",
		Long: `project talks to the hub you logged in to (berth login). A project's name, data
plane and key prefix are fixed when it is created: its versions are stored
under them. Its description and trusted keys can change; the hub checks the
signature of each version against the trusted keys, and its version pages say
whether one of them signed it.

Exit codes: 1 when the project does not exist (or is not yours to see), 2 for
bad input, 4 when you are not an admin of the project.`,
	}
	cmd.AddCommand(newProjectShowCommand(g), newProjectSetCommand(g))
	return cmd
}

func newProjectShowCommand(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show PROJECT",
		Short: "Show a project's data plane, prefix, description and trusted keys",
		Args:  args(1, "PROJECT"),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := g.defaultHubAPI()
			if err != nil {
				return err
			}
			st, err := c.ProjectSettings(cmd.Context(), a[0])
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(st)
			}
			printProjectSettings(g.Stdout, st)
			return nil
		},
	}
}

func newProjectSetCommand(g *Globals) *cobra.Command {
	var description string
	var keys []string
	var noKeys bool
	cmd := &cobra.Command{
		Use:   "set PROJECT [--description TEXT] [--trusted-key KEY|FILE]... [--no-trusted-keys]",
		Short: "Change a project's description or trusted keys (project admins)",
		Long: `set changes what its flags name and leaves the rest. --trusted-key replaces the
project's trusted keys with the ones given (a minisign public key, RWQ..., or a
.pub file from berth keygen); --no-trusted-keys removes them all.`,
		Example: `  berth project set my-app --description "Release builds of my-app; owner: platform team"
  berth project set my-app --trusted-key release.key.pub --trusted-key RWQ...`,
		Args: args(1, "PROJECT"),
		RunE: func(cmd *cobra.Command, a []string) error {
			var ch hubclient.ProjectSettingsChange
			if cmd.Flags().Changed("description") {
				ch.Description = &description
			}
			switch {
			case noKeys && len(keys) > 0:
				return usageErr(errors.New("--trusted-key and --no-trusted-keys: choose one"))
			case noKeys:
				ch.TrustedKeys = &[]string{}
			case len(keys) > 0:
				parsed, err := trustedKeys(keys, nil)
				if err != nil {
					return err
				}
				text := make([]string, len(parsed))
				for i, k := range parsed {
					text[i] = k.String()
				}
				ch.TrustedKeys = &text
			}
			if ch.Description == nil && ch.TrustedKeys == nil {
				return usageErr(errors.New("nothing to change: give --description, --trusted-key or --no-trusted-keys"))
			}
			c, err := g.defaultHubAPI()
			if err != nil {
				return err
			}
			st, err := c.SetProjectSettings(cmd.Context(), a[0], ch)
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(st)
			}
			if len(st.Changed) == 0 {
				fmt.Fprintf(g.Stdout, "project %s: nothing changed\n", st.Name)
			} else {
				fmt.Fprintf(g.Stdout, "project %s: changed %s\n", st.Name, strings.Join(st.Changed, ", "))
			}
			printProjectSettings(g.Stdout, st)
			return nil
		},
	}
	cmd.Flags().StringVar(&description, "description", "", "plain text, at most 2000 characters (empty removes it)")
	cmd.Flags().StringArrayVar(&keys, "trusted-key", nil, "minisign public key (RWQ...) or .pub file; repeatable; replaces the project's trusted keys")
	cmd.Flags().BoolVar(&noKeys, "no-trusted-keys", false, "remove every trusted key")
	return cmd
}

func printProjectSettings(w io.Writer, st *hubclient.ProjectSettings) {
	fmt.Fprintf(w, "project:      %s (your role: %s)\n", st.Name, st.Role)
	fmt.Fprintf(w, "data plane:   %s\n", st.DataPlane)
	fmt.Fprintf(w, "key prefix:   %s\n", st.Prefix)
	desc := "none"
	if st.Description != "" {
		desc = strings.ReplaceAll(st.Description, "\n", "\n              ")
	}
	fmt.Fprintf(w, "description:  %s\n", desc)
	if len(st.TrustedKeys) == 0 {
		fmt.Fprintln(w, "trusted keys: none (signatures are shown, not checked)")
		return
	}
	for i, k := range st.TrustedKeys {
		label := "trusted keys:"
		if i > 0 {
			label = ""
		}
		id := ""
		if i < len(st.TrustedKeyIDs) {
			id = st.TrustedKeyIDs[i] + " "
		}
		fmt.Fprintf(w, "%-13s %s%s\n", label, id, k)
	}
}
