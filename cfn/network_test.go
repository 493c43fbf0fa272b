package cfn

import (
	"net/netip"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/berth-dev/berth/internal/golden"
	"github.com/berth-dev/berth/policy"
)

var networkCases = []struct {
	name, kind string
	np         NetworkParams
	ap         AccepterParams
}{
	{name: "network", kind: "network", np: NetworkParams{CIDR: "10.40.0.0/16"}},
	{name: "network-links", kind: "network", np: NetworkParams{Qualifier: "acme", CIDR: "10.40.0.0/20", AZs: 3,
		Peers: []Peer{
			{Name: "Build", VPCID: "vpc-0a1b2c3d4e5f60718", Account: "444455556666", CIDR: "10.50.0.0/16", RoleARN: "arn:aws:iam::444455556666:role/acme-peering-accepter"},
			{Name: "Lab", VPCID: "vpc-0f1e2d3c", Account: "444455556666", Region: "us-east-1", CIDR: "fd00:1234::/56", RoleARN: "arn:aws:iam::444455556666:role/acme-peering-accepter"},
		},
		InterfaceEndpoints: []string{"com.amazonaws.vpce.eu-west-1.vpce-svc-0123456789abcdef0"},
		EndpointService: &EndpointService{NLBARNs: []string{"arn:aws:elasticloadbalancing:eu-west-1:111122223333:loadbalancer/net/berth-api/0123456789abcdef"},
			AllowedPrincipals: []string{"arn:aws:iam::444455556666:root"}},
	}},
	{name: "peering-accepter", kind: "peering-accepter", ap: AccepterParams{DataPlaneAccount: "111122223333", VPCID: "vpc-0a1b2c3d4e5f60718", DataPlaneCIDR: "10.40.0.0/16"}},
	{name: "peering-accepter-routes", kind: "peering-accepter", ap: AccepterParams{Qualifier: "acme", DataPlaneAccount: "111122223333",
		VPCID: "vpc-0a1b2c3d4e5f60718", DataPlaneCIDR: "10.40.0.0/20", RouteTableIDs: []string{"rtb-0123456789abcdef0", "rtb-0fedcba9"}}},
}

// TestNetworkTemplates: golden files, parsed back by goformation, every
// reference resolved, and lint clean.
func TestNetworkTemplates(t *testing.T) {
	for _, c := range networkCases {
		for _, f := range []Format{YAML, JSON} {
			out, err := RenderNetworkKind(c.kind, c.np, c.ap, f)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			name := c.name + "." + string(f)
			golden.Check(t, name, out)
			// goformation's own types lag the registry schemas (no Tags
			// on VPC endpoints), so its strict parser cannot read these
			// back; a plain YAML parse checks the output's syntax.
			var tmpl struct {
				Resources map[string]any `yaml:"Resources"`
			}
			if err := yaml.Unmarshal(out, &tmpl); err != nil {
				t.Fatalf("%s: cannot parse it back: %v", name, err)
			}
			if len(tmpl.Resources) == 0 {
				t.Errorf("%s: no resources after parsing back", name)
			}
			js, _ := RenderNetworkKind(c.kind, c.np, c.ap, JSON)
			checkReferences(t, name, js)
			// goformation evaluates raw intrinsic maps as it renders (a
			// Ref to a resource becomes null, ${AWS::Region} us-east-1).
			if strings.Contains(string(js), "null") || (c.kind == "network" && !strings.Contains(string(js), "com.amazonaws.${AWS::Region}.s3")) {
				t.Errorf("%s: an intrinsic was evaluated at render time:\n%s", name, js)
			}
			fs, err := policy.Lint(name, out)
			if err != nil {
				t.Fatal(err)
			}
			for _, fd := range fs {
				t.Errorf("%s", fd)
			}
		}
	}
}

// TestNetworkTagged: every taggable network resource carries the qualifier
// tag, which the provisioner's EC2 permissions are scoped by.
func TestNetworkTagged(t *testing.T) {
	c := networkCases[1]
	res := renderNetworkResources(t, c.np)
	untaggable := map[string]bool{"AWS::EC2::SubnetRouteTableAssociation": true, "AWS::EC2::Route": true, "AWS::EC2::VPCEndpointServicePermissions": true}
	n := 0
	for logical, r := range res {
		if untaggable[r.Type] {
			continue
		}
		n++
		if !strings.Contains(toJSON(t, r.Properties["Tags"]), `{"Key":"berth:qualifier","Value":"acme"}`) {
			t.Errorf("%s (%s) lacks the qualifier tag: %v", logical, r.Type, r.Properties["Tags"])
		}
	}
	if n < 8 {
		t.Errorf("only %d tagged resources", n)
	}
}

func TestNetworkRefuses(t *testing.T) {
	ok := networkCases[1].np
	for _, c := range []struct {
		mutate func(*NetworkParams)
		want   string
	}{
		{func(p *NetworkParams) { p.CIDR = "" }, "CIDR is required"},
		{func(p *NetworkParams) { p.CIDR = "10.40.0.1/16" }, "host bits"},
		{func(p *NetworkParams) { p.CIDR = "10.0.0.0/8" }, "/16 to /28"},
		{func(p *NetworkParams) { p.CIDR = "fd00::/56" }, "IPv4"},
		{func(p *NetworkParams) { p.CIDR = "10.0.0.0/28"; p.AZs = 2 }, "too small"},
		{func(p *NetworkParams) { p.AZs = 7 }, "1 to 6"},
		{func(p *NetworkParams) { p.Peers[0].Name = "a-b" }, "peer name"},
		{func(p *NetworkParams) { p.Peers[1].Name = p.Peers[0].Name }, "twice"},
		{func(p *NetworkParams) { p.Peers[0].VPCID = "vpc-xyz" }, "VPC ID"},
		{func(p *NetworkParams) { p.Peers[0].RoleARN = "" }, "accepter role"},
		{func(p *NetworkParams) { p.Peers[0].CIDR = "10.50.0.0" }, "not a CIDR"},
		{func(p *NetworkParams) { p.InterfaceEndpoints = []string{"s3"} }, "endpoint service name"},
		{func(p *NetworkParams) { p.EndpointService.AllowedPrincipals = []string{"*"} }, "anyone"},
		{func(p *NetworkParams) { p.EndpointService.NLBARNs = nil }, "load balancer"},
	} {
		p := ok
		p.Peers = append([]Peer(nil), ok.Peers...)
		es := *ok.EndpointService
		p.EndpointService = &es
		c.mutate(&p)
		if _, err := Network(p); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want error with %q, got %v", c.want, err)
		}
	}
	for _, ap := range []AccepterParams{
		{DataPlaneAccount: "1", VPCID: "vpc-0a1b2c3d", DataPlaneCIDR: "10.0.0.0/16"},
		{DataPlaneAccount: "111122223333", VPCID: "vpc-0a1b2c3d", DataPlaneCIDR: "10.0.0.0/33"},
		{DataPlaneAccount: "111122223333", VPCID: "vpc-0a1b2c3d", DataPlaneCIDR: "10.0.0.0/16", RouteTableIDs: []string{"main"}},
	} {
		if _, err := PeeringAccepter(ap); err == nil {
			t.Errorf("PeeringAccepter(%+v) accepted", ap)
		}
	}
}

func TestSubnetCIDRs(t *testing.T) {
	for _, c := range []struct {
		vpc  string
		n    int
		want string
	}{
		{"10.40.0.0/16", 1, "10.40.0.0/16"},
		{"10.40.0.0/16", 2, "10.40.0.0/17 10.40.128.0/17"},
		{"10.40.0.0/16", 3, "10.40.0.0/18 10.40.64.0/18 10.40.128.0/18"},
		{"192.168.8.0/22", 6, "192.168.8.0/25 192.168.8.128/25 192.168.9.0/25 192.168.9.128/25 192.168.10.0/25 192.168.10.128/25"},
		{"10.0.0.0/27", 2, "10.0.0.0/28 10.0.0.16/28"},
	} {
		got, err := SubnetCIDRs(netip.MustParsePrefix(c.vpc), c.n)
		var s []string
		for _, p := range got {
			s = append(s, p.String())
		}
		if err != nil || strings.Join(s, " ") != c.want {
			t.Errorf("SubnetCIDRs(%s, %d) = %v, %v; want %s", c.vpc, c.n, s, err, c.want)
		}
	}
}

func renderNetworkResources(t *testing.T, np NetworkParams) map[string]templateResource {
	t.Helper()
	b, err := RenderNetworkKind("network", np, AccepterParams{}, JSON)
	if err != nil {
		t.Fatal(err)
	}
	var tmpl struct{ Resources map[string]templateResource }
	if err := jsonUnmarshal(b, &tmpl); err != nil {
		t.Fatal(err)
	}
	return tmpl.Resources
}
