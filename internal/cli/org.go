package cli

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/hub/hubclient"
)

// hubAPI is a client of the hub of login, in the organisation --org (or
// BERTH_ORG) names; none: the user's first, as the hub decides. The name is
// checked here, where it is used, so that a stray BERTH_ORG does not break
// commands that never talk to a hub.
func (g *Globals) hubAPI(login *hubLogin) (*hubclient.Client, error) {
	org := g.Org
	if org == "" {
		org = g.Env("BERTH_ORG")
	}
	if org != "" {
		if err := artifact.ValidateProject(org); err != nil {
			return nil, usageErr(fmt.Errorf("--org %q: not an organisation name (berth org list shows yours): %w", truncateValue(org), err))
		}
	}
	return &hubclient.Client{URL: login.URL, Token: login.Token, Org: org}, nil
}

// defaultHubAPI is hubAPI on the default hub, for commands that need one.
func (g *Globals) defaultHubAPI() (*hubclient.Client, error) {
	login, err := g.defaultHub()
	if err != nil {
		return nil, err
	}
	if login == nil {
		return nil, usageErr(errors.New("not logged in to a hub: run berth login --url https://berth.example.com first"))
	}
	return g.hubAPI(login)
}

// completeOrg offers the organisations of the default hub for --org; no
// login or no answer within a few seconds offers nothing.
func (g *Globals) completeOrg(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	login, err := g.defaultHub()
	if err != nil || login == nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	orgs, err := (&hubclient.Client{URL: login.URL, Token: login.Token}).Organisations(ctx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	for _, o := range orgs {
		names = append(names, o.Name+"\t"+o.Role)
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

func newOrgCommand(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "org",
		Short: "The hub organisations you belong to",
		Long: `A hub user may belong to several organisations; each has its own data planes,
projects and audit log, and project names are unique within one only. Every
command that talks to the hub works in the organisation --org (env BERTH_ORG)
names, else in your first one.`,
		Example: `  berth org list
  berth --org acme-prod versions myapp`,
	}
	cmd.AddCommand(newOrgListCommand(g), newOrgCreateCommand(g))
	return cmd
}

func newOrgListCommand(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List your organisations on the default hub, with your role and the one selected",
		Args:  args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.defaultHubAPI()
			if err != nil {
				return err
			}
			orgs, err := c.Organisations(cmd.Context())
			if err != nil {
				return err
			}
			if g.json() {
				if orgs == nil {
					orgs = []hubclient.Organisation{}
				}
				return g.printJSON(map[string]any{"organisations": orgs})
			}
			if len(orgs) == 0 {
				fmt.Fprintln(g.Stdout, "no organisations: ask an organisation admin to add you")
				return nil
			}
			tw := tabwriter.NewWriter(g.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "SELECTED\tNAME\tROLE")
			for _, o := range orgs {
				mark := ""
				if o.Selected {
					mark = "*"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", mark, printable(o.Name), printable(o.Role))
			}
			return tw.Flush()
		},
	}
}

func newOrgCreateCommand(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "create NAME",
		Short: "Create an organisation on the default hub; you become its admin (admins of an organisation only)",
		Args:  args(1, "NAME"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := artifact.ValidateProject(a[0]); err != nil {
				return usageErr(fmt.Errorf("NAME: %w", err))
			}
			c, err := g.defaultHubAPI()
			if err != nil {
				return err
			}
			o, err := c.CreateOrganisation(cmd.Context(), a[0])
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(o)
			}
			fmt.Fprintf(g.Stdout, "created organisation %s; you are its admin (work in it with --org %s)\n", o.Name, o.Name)
			return nil
		},
	}
}
