package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/dataplane"
)

type quotasOpts struct {
	regions []string
	request bool
	yes     bool
}

func newDataplaneQuotasCommand(g *Globals) *cobra.Command {
	var o quotasOpts
	cmd := &cobra.Command{
		Use:   "quotas [--regions R1,R2] [--request] [--yes]",
		Short: "Show the data plane's service quotas per region, and request the increases it needs",
		Long: `quotas reads the desired quotas of berth's config (quotas: a list of service,
code, name and value) and shows, for each region, the value applied to the
account (the default when the account has none of its own), AWS's default, the
desired value, and any increase request that is still open (PENDING or
CASE_OPENED) with its status and case.

With --request it asks Service Quotas for an increase to the desired value
where the applied value is lower and no request is open, after a yes at the
prompt (or --yes), and prints each request's ID and case. A second run files
nothing new while the first requests are open. A global quota is checked and
requested in the first region only.

The regions are --regions, else the regions of the config's S3 stores. The
calls use your own credentials (--profile, AWS_PROFILE), which must be in the
data plane's account, for example a profile "berth sso config" wrote: the
bootstrap's roles do not grant Service Quotas.`,
		Example: `  # berth.yaml
  # quotas:
  #   - service: ec2
  #     code: L-1216C47A
  #     name: Running On-Demand Standard instances (vCPUs)
  #     value: 256
  berth dataplane quotas --profile payments-prod-administratoraccess
  berth dataplane quotas --request --yes`,
		Args: args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error { return g.runQuotas(cmd.Context(), o) },
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&o.regions, "regions", nil, "regions, comma-separated (default: the regions of the config's S3 stores)")
	fl.BoolVar(&o.request, "request", false, "request the increases the data plane needs")
	fl.BoolVar(&o.yes, "yes", false, "with --request: file the requests without asking")
	return cmd
}

func (g *Globals) runQuotas(ctx context.Context, o quotasOpts) error {
	if o.yes && !o.request {
		return usageErr(errors.New("--yes goes with --request"))
	}
	cfg, err := g.readConfigFile()
	if err != nil {
		return err
	}
	if cfg == nil || len(cfg.Quotas) == 0 {
		return usageErr(errors.New("no quotas in berth's config: add a quotas list (service, code, name, value), see \"berth dataplane quotas --help\""))
	}
	regions := o.regions
	if len(regions) == 0 {
		regions = storeRegions(cfg)
	}
	if len(regions) == 0 {
		return usageErr(errors.New("no AWS regions: give --regions, or configure S3 stores with region=R"))
	}
	regions, err = dataplane.QuotaRegions(regions)
	if err != nil {
		return usageErr(err)
	}
	awsCfg, id, err := g.awsCaller(ctx, regions[0])
	if err != nil {
		return err
	}
	g.info("berth: service quotas of account %s (as %s)", id.Account, id.ARN)
	clients := map[string]dataplane.QuotaAPI{}
	for _, r := range regions {
		c := awsCfg.Copy()
		c.Region = r
		clients[r] = servicequotas.NewFromConfig(c)
	}
	client := func(r string) dataplane.QuotaAPI { return clients[r] }
	var want []dataplane.DesiredQuota
	for _, q := range cfg.Quotas {
		want = append(want, dataplane.DesiredQuota{Service: q.Service, Code: q.Code, Name: q.Name, Value: q.Value})
	}
	statuses, err := dataplane.CheckQuotas(ctx, client, regions, want)
	if err != nil {
		return err
	}
	if !g.json() {
		printQuotas(g, statuses)
	}
	n := dataplane.PendingIncreases(statuses)
	if o.request && n > 0 {
		ok, err := g.confirm(o.yes, fmt.Sprintf("request %d increase(s)?", n))
		if err != nil || !ok {
			return err
		}
		err = dataplane.RequestQuotas(ctx, client, statuses)
		if !g.json() {
			for _, s := range statuses {
				if r := s.Filed; r != nil {
					fmt.Fprintf(g.Stdout, "requested %s %s %s to %s: request %s, %s\n", s.Region, s.Service, s.Code, fnum(s.Desired), r.ID, caseOf(r))
				}
			}
		}
		if err != nil {
			if g.json() {
				return g.jsonResult(statuses, err)
			}
			return err
		}
	} else if !g.json() && n > 0 {
		g.info("berth: %d quota(s) below the desired value with no open request; file the requests with --request", n)
	}
	if g.json() {
		return g.printJSON(statuses)
	}
	return nil
}

// storeRegions returns the AWS regions of the config's S3 stores, in order.
func storeRegions(c *config.Config) []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range c.Regions {
		s, err := config.ParseStore(r.Store)
		if err != nil || s.Scheme != "s3" || s.Region == "" || s.Endpoint != "" || seen[s.Region] {
			continue
		}
		seen[s.Region] = true
		out = append(out, s.Region)
	}
	return out
}

func printQuotas(g *Globals, statuses []dataplane.QuotaStatus) {
	w := tabwriter.NewWriter(g.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "REGION\tSERVICE\tQUOTA\tAPPLIED\tDEFAULT\tDESIRED\tSTATE\tNAME")
	for _, s := range statuses {
		state := s.Need
		switch s.Need {
		case dataplane.QuotaOpen:
			state = "requested " + fnum(s.Open.Desired) + ": " + caseOf(s.Open)
		case dataplane.QuotaIncrease:
			state = "below desired"
		case dataplane.QuotaFixed:
			state = "below desired, not adjustable"
		case dataplane.QuotaGlobal:
			fmt.Fprintf(w, "%s\t%s\t%s\t\t\t%s\tglobal\t%s\n", s.Region, s.Service, s.Code, fnum(s.Desired), s.Name)
			continue
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Region, s.Service, s.Code, fnum(s.Applied), fnum(s.Default), fnum(s.Desired), state, s.Name)
	}
	w.Flush()
}

// caseOf says where a request stands: its support case once there is one.
func caseOf(r *dataplane.QuotaRequest) string {
	if r.CaseID != "" {
		return r.Status + ", case " + r.CaseID
	}
	return r.Status
}

func fnum(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
