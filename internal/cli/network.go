package cli

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/berth-dev/berth/cfn"
	"github.com/berth-dev/berth/dataplane"
	"github.com/berth-dev/berth/deploy"
)

// networkFlags are the network's settings: a file, and flags that set or
// add to what it says.
type networkFlags struct {
	file               string
	cidr               string
	azs                int
	peers              []string
	interfaceEndpoints []string
	nlbARNs            []string
	allowedPrincipals  []string
	reserved           []string
}

func (f *networkFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.file, "file", "", "network file (YAML: cidr, azs, peers, interface_endpoints, endpoint_service, reserved); flags add to it")
	fl.StringVar(&f.cidr, "cidr", "", "the data plane VPC's IPv4 range, /16 to /28, e.g. 10.40.0.0/16")
	fl.IntVar(&f.azs, "azs", 0, "availability zones with a subnet (default 2)")
	fl.StringArrayVar(&f.peers, "peer", nil, "peer VPC as name=N,vpc=ID,account=ID,cidr=CIDR,role=ACCEPTER_ROLE_ARN[,region=R]; repeatable")
	fl.StringArrayVar(&f.interfaceEndpoints, "interface-endpoint", nil, "PrivateLink endpoint service name to reach from the VPC; repeatable")
	fl.StringArrayVar(&f.nlbARNs, "nlb-arn", nil, "offer these network load balancers as an endpoint service; repeatable")
	fl.StringArrayVar(&f.allowedPrincipals, "allowed-principal", nil, "ARN allowed to connect to the endpoint service; repeatable")
	fl.StringArrayVar(&f.reserved, "reserved", nil, "another range the network must not overlap, as NAME=CIDR; repeatable")
}

// params reads the file and applies the flags.
func (f *networkFlags) params() (cfn.NetworkParams, []dataplane.NamedCIDR, error) {
	var (
		p        cfn.NetworkParams
		reserved []dataplane.NamedCIDR
	)
	if f.file != "" {
		data, err := os.ReadFile(f.file)
		if err != nil {
			return p, nil, usageErr(fmt.Errorf("read --file: %w", err))
		}
		if p, reserved, err = dataplane.ParseNetworkFile(data); err != nil {
			return p, nil, fmt.Errorf("%s: %w", f.file, err)
		}
	}
	if f.cidr != "" {
		p.CIDR = f.cidr
	}
	if f.azs != 0 {
		p.AZs = f.azs
	}
	for _, s := range f.peers {
		peer, err := dataplane.ParsePeer(s)
		if err != nil {
			return p, nil, err
		}
		p.Peers = append(p.Peers, peer)
	}
	p.InterfaceEndpoints = append(p.InterfaceEndpoints, f.interfaceEndpoints...)
	if len(f.nlbARNs) > 0 || len(f.allowedPrincipals) > 0 {
		if p.EndpointService == nil {
			p.EndpointService = &cfn.EndpointService{}
		}
		p.EndpointService.NLBARNs = append(p.EndpointService.NLBARNs, f.nlbARNs...)
		p.EndpointService.AllowedPrincipals = append(p.EndpointService.AllowedPrincipals, f.allowedPrincipals...)
	}
	for _, s := range f.reserved {
		name, cidr, ok := strings.Cut(s, "=")
		if !ok || name == "" {
			return p, nil, usageErr(fmt.Errorf("--reserved %q: write NAME=CIDR, as in office=192.168.0.0/16", s))
		}
		reserved = append(reserved, dataplane.NamedCIDR{Name: name, CIDR: cidr})
	}
	return p, reserved, nil
}

func newDataplaneNetworkCommand(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "network",
		Short: "Plan, deploy and inspect the data plane's network: VPC, S3 endpoint, peering, PrivateLink",
		Long: `network manages the stack QUALIFIER-dataplane-network in one region through the
bootstrap's roles: a VPC with a subnet in each of the first --azs availability
zones, one private route table, an S3 gateway endpoint on it (build traffic to S3
stays off any NAT), the requester side of each VPC peering with a route to the
peer (the peer account first deploys "berth template render peering-accepter"),
PrivateLink interface endpoints with private DNS, and an endpoint service with
allowed principals and acceptance required.

plan refuses overlapping ranges (the VPC, the peers and --reserved ranges) before
anything is deployed, and names each colliding pair.`,
		Example: `  berth dataplane network plan --account 111122223333 --external-id 7d1f --regions eu-west-1 --cidr 10.40.0.0/16
  berth dataplane network deploy --account 111122223333 --external-id 7d1f --regions eu-west-1 --file network.yaml --yes
  berth dataplane network status --account 111122223333 --external-id 7d1f --regions eu-west-1`,
	}
	cmd.AddCommand(newNetworkDeployCommand(g, false), newNetworkDeployCommand(g, true), newNetworkStatusCommand(g))
	return cmd
}

func newNetworkDeployCommand(g *Globals, apply bool) *cobra.Command {
	var (
		t   awsTarget
		nf  networkFlags
		yes bool
	)
	use, short := "plan", "Show what deploying the network would change (overlapping ranges are refused)"
	if apply {
		use, short = "deploy", "Deploy the network stack after showing its plan"
	}
	cmd := &cobra.Command{
		Use:   use + " --account ID --external-id ID --regions R (--cidr CIDR | --file F) [flags]",
		Short: short,
		Args:  args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			p, reserved, err := nf.params()
			if err != nil {
				return err
			}
			target := t.target()
			if err := target.Validate(); err != nil {
				return err
			}
			if err := target.CheckOneRegion(); err != nil {
				return err
			}
			p.Qualifier = target.Qualifier
			// Before any AWS call: a bad or overlapping range changes nothing.
			if err := dataplane.CheckNetwork(p, reserved); err != nil {
				return err
			}
			return g.deployNetwork(ctx, &t, p, reserved, apply, yes)
		},
	}
	t.register(cmd)
	nf.register(cmd.Flags())
	if apply {
		cmd.Flags().BoolVar(&yes, "yes", false, "apply without asking")
	}
	return cmd
}

func (g *Globals) deployNetwork(ctx context.Context, t *awsTarget, p cfn.NetworkParams, reserved []dataplane.NamedCIDR, apply, yes bool) error {
	a, err := g.assume(ctx, t, dataplane.Provisioner)
	if err != nil {
		return err
	}
	warning, err := a.CheckBootstrapVersion(ctx, a.Target.Regions[0])
	if err != nil {
		return err
	}
	if warning != "" {
		g.info("berth: warning: %s", warning)
	}
	plan, err := a.PlanNetwork(ctx, p, reserved)
	if err != nil {
		return err
	}
	discard := func() {
		if err := plan.Discard(context.WithoutCancel(ctx)); err != nil {
			g.log.Warn("discard plan", "err", err)
		}
	}
	if !g.json() {
		for _, r := range plan.Regions {
			if err := deploy.FormatPlan(g.Stdout, r.Plan); err != nil {
				discard()
				return err
			}
		}
	}
	if !apply {
		discard()
		if g.json() {
			return g.printJSON(plan.Regions)
		}
		return nil
	}
	if plan.Changes() {
		ok, err := g.confirm(yes, "apply these changes?")
		if err != nil || !ok {
			discard()
			return err
		}
	}
	if err := plan.Apply(ctx); err != nil {
		return err
	}
	if g.json() {
		return g.printJSON(plan.Regions)
	}
	r := plan.Regions[0]
	out := r.Result.Outputs
	fmt.Fprintf(g.Stdout, "network in %s: VPC %s (%s), subnets %s, S3 endpoint %s\n", r.Region, orDash(out["VpcId"]), orDash(out["VpcCidr"]),
		orDash(out["SubnetIds"]), orDash(out["S3EndpointId"]))
	for _, peer := range p.Peers {
		if id := out["Peering"+peer.Name+"Id"]; id != "" {
			fmt.Fprintf(g.Stdout, "peering %s: %s; the peer adds routes by deploying the peering-accepter template with PeeringConnectionId=%s\n", peer.Name, id, id)
		}
	}
	if id := out["EndpointServiceId"]; id != "" {
		fmt.Fprintf(g.Stdout, "endpoint service %s: accept each connection request (acceptance is required)\n", id)
	}
	return nil
}

func newNetworkStatusCommand(g *Globals) *cobra.Command {
	var t awsTarget
	cmd := &cobra.Command{
		Use:   "status --account ID --external-id ID --regions R1,R2,...",
		Short: "Show the network stack of every region: status, VPC, range",
		Args:  args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			a, err := g.assume(ctx, &t, dataplane.Ops)
			if err != nil {
				return err
			}
			list, err := a.NetworkStatus(ctx)
			if err != nil {
				return err
			}
			return g.printStacks(list, a.Target.NetworkStackName(), "VPC", "VpcId", "CIDR", "VpcCidr")
		},
	}
	t.register(cmd)
	return cmd
}

// accepterFlags are the peering-accepter template's flags.
type accepterFlags struct {
	p cfn.AccepterParams
}

func (f *accepterFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.p.DataPlaneAccount, "dataplane-account", "", "peering-accepter: the data plane account whose provisioner may accept")
	fl.StringVar(&f.p.VPCID, "vpc", "", "peering-accepter: the VPC in this account to peer")
	fl.StringVar(&f.p.DataPlaneCIDR, "dataplane-cidr", "", "peering-accepter: the data plane VPC's range, routed through the peering")
	fl.StringArrayVar(&f.p.RouteTableIDs, "route-table", nil, "peering-accepter: route table that gets the route to the data plane; repeatable")
}

// renderNetworkTemplate renders the network kinds of `template render`.
func (g *Globals) renderNetworkTemplate(kind, qualifier string, nf *networkFlags, af *accepterFlags, f cfn.Format, out string) error {
	np, _, err := nf.params()
	if err != nil {
		return err
	}
	np.Qualifier, af.p.Qualifier = qualifier, qualifier
	data, err := cfn.RenderNetworkKind(kind, np, af.p, f)
	if err != nil {
		return usageErr(err)
	}
	return g.writeOut(out, data)
}
