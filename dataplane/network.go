package dataplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/berth-dev/berth/cfn"
	"github.com/berth-dev/berth/deploy"
	"github.com/berth-dev/berth/errkind"
)

// ErrOverlap: two of the ranges a network plan would route between
// overlap; nothing was deployed.
var ErrOverlap = errkind.New("overlapping CIDRs", errkind.Invalid)

// NamedCIDR is a range with what it belongs to, for messages.
type NamedCIDR struct {
	Name string `yaml:"name"` // e.g. "data plane VPC", "peer Build"
	CIDR string `yaml:"cidr"`
}

// Collision is a pair of overlapping ranges.
type Collision struct {
	A, B NamedCIDR
}

func (c Collision) String() string {
	return fmt.Sprintf("%s %s overlaps %s %s", c.A.Name, c.A.CIDR, c.B.Name, c.B.CIDR)
}

// normalize parses a CIDR; an IPv4-mapped IPv6 range (::ffff:10.0.0.0/104)
// is the IPv4 range it maps, so that it collides with that range.
func normalize(s string) (netip.Prefix, error) {
	p, err := cfn.ParseCIDR(s)
	if err != nil {
		return p, err
	}
	// A canonical prefix of a mapped address is at least a /96.
	if a := p.Addr(); a.Is4In6() {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96), nil
	}
	return p, nil
}

// Overlaps returns every pair of ranges that share an address, in input
// order. IPv4 and IPv6 ranges never overlap (except IPv4-mapped IPv6).
// A range that is not a canonical CIDR is an error.
func Overlaps(ranges []NamedCIDR) ([]Collision, error) {
	parsed := make([]netip.Prefix, len(ranges))
	for i, r := range ranges {
		p, err := normalize(r.CIDR)
		if err != nil {
			return nil, fmt.Errorf("%s: %v: %w", r.Name, err, errkind.Invalid)
		}
		parsed[i] = p
	}
	var out []Collision
	for i := range parsed {
		for j := i + 1; j < len(parsed); j++ {
			if parsed[i].Overlaps(parsed[j]) {
				out = append(out, Collision{ranges[i], ranges[j]})
			}
		}
	}
	return out, nil
}

// NetworkRanges are the ranges a network routes between: the data plane
// VPC, each peer, and any other ranges the caller names (existing VPCs of
// the customer that must stay reachable).
func NetworkRanges(p cfn.NetworkParams, other []NamedCIDR) []NamedCIDR {
	out := []NamedCIDR{{Name: "data plane VPC", CIDR: p.CIDR}}
	for _, peer := range p.Peers {
		out = append(out, NamedCIDR{Name: "peer " + peer.Name + " (" + peer.VPCID + ")", CIDR: peer.CIDR})
	}
	return append(out, other...)
}

// CheckNetwork validates p as the template would and refuses overlapping
// ranges, naming each pair: before any call to AWS.
func CheckNetwork(p cfn.NetworkParams, other []NamedCIDR) error {
	if _, err := cfn.Network(p); err != nil {
		return fmt.Errorf("%w: %w", err, errkind.Invalid)
	}
	cs, err := Overlaps(NetworkRanges(p, other))
	if err != nil {
		return err
	}
	if len(cs) > 0 {
		var msgs []string
		for _, c := range cs {
			msgs = append(msgs, c.String())
		}
		return fmt.Errorf("refusing the network plan: %s; routes to overlapping ranges are ambiguous, so pick a --cidr outside the peers' ranges: %w",
			strings.Join(msgs, "; "), ErrOverlap)
	}
	return nil
}

// NetworkFile is the network configuration file (YAML).
type NetworkFile struct {
	CIDR               string   `yaml:"cidr"`
	AZs                int      `yaml:"azs"`
	Peers              []Peer   `yaml:"peers"`
	InterfaceEndpoints []string `yaml:"interface_endpoints"`
	EndpointService    *struct {
		NLBARNs           []string `yaml:"nlb_arns"`
		AllowedPrincipals []string `yaml:"allowed_principals"`
	} `yaml:"endpoint_service"`
	// Reserved are other ranges routed to or from the data plane (an
	// on-premises network, a VPN) that must not overlap either.
	Reserved []NamedCIDR `yaml:"reserved"`
}

// Peer is a peer in the network file.
type Peer struct {
	Name    string `yaml:"name"`
	VPC     string `yaml:"vpc"`
	Account string `yaml:"account"`
	Region  string `yaml:"region"`
	CIDR    string `yaml:"cidr"`
	Role    string `yaml:"role"`
}

func (p Peer) params() cfn.Peer {
	return cfn.Peer{Name: p.Name, VPCID: p.VPC, Account: p.Account, Region: p.Region, CIDR: p.CIDR, RoleARN: p.Role}
}

// ParseNetworkFile reads a network file; unknown fields are errors.
func ParseNetworkFile(data []byte) (cfn.NetworkParams, []NamedCIDR, error) {
	var f NetworkFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// An empty file (io.EOF) sets nothing.
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return cfn.NetworkParams{}, nil, fmt.Errorf("read network file: %v: %w", err, errkind.Invalid)
	}
	p := cfn.NetworkParams{CIDR: f.CIDR, AZs: f.AZs, InterfaceEndpoints: f.InterfaceEndpoints}
	for _, peer := range f.Peers {
		p.Peers = append(p.Peers, peer.params())
	}
	if f.EndpointService != nil {
		p.EndpointService = &cfn.EndpointService{NLBARNs: f.EndpointService.NLBARNs, AllowedPrincipals: f.EndpointService.AllowedPrincipals}
	}
	for i, r := range f.Reserved {
		if r.Name == "" {
			f.Reserved[i].Name = "reserved range"
		}
	}
	return p, f.Reserved, nil
}

// ParsePeer parses a --peer flag:
// name=Build,vpc=vpc-0123...,account=444455556666,cidr=10.50.0.0/16,role=arn:...[,region=us-east-1].
func ParsePeer(s string) (cfn.Peer, error) {
	var p Peer
	fields := map[string]*string{"name": &p.Name, "vpc": &p.VPC, "account": &p.Account, "cidr": &p.CIDR, "role": &p.Role, "region": &p.Region}
	seen := map[string]bool{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		dst, known := fields[k]
		switch {
		case !ok || !known:
			return cfn.Peer{}, fmt.Errorf("--peer %q: %q is not KEY=VALUE with KEY one of name, vpc, account, cidr, role, region: %w", s, kv, errkind.Invalid)
		case seen[k]:
			return cfn.Peer{}, fmt.Errorf("--peer %q: %s is given twice: %w", s, k, errkind.Invalid)
		}
		seen[k] = true
		*dst = v
	}
	for _, k := range []string{"name", "vpc", "account", "cidr", "role"} {
		if !seen[k] {
			return cfn.Peer{}, fmt.Errorf("--peer %q: %s= is missing (want name=,vpc=,account=,cidr=,role= and optionally region=): %w", s, k, errkind.Invalid)
		}
	}
	return p.params(), nil
}

// CheckOneRegion refuses a network plan for several regions: each region's
// VPC needs its own range.
func (t *AWSTarget) CheckOneRegion() error {
	if len(t.Regions) != 1 {
		return fmt.Errorf("a network is one VPC in one region: give one region in --regions and run again for each region with its own --cidr: %w", errkind.Invalid)
	}
	return nil
}

// NetworkStackName is the network stack's name in the target's region.
func (t *AWSTarget) NetworkStackName() string { return cfn.NetworkStackName(t.Qualifier) }

// PlanNetwork checks p (overlaps included, before any call), renders the
// network template and creates a change set for the network stack in the
// target's one region; nothing changes until Apply.
func (a *AWS) PlanNetwork(ctx context.Context, p cfn.NetworkParams, other []NamedCIDR) (*AWSDeploy, error) {
	if err := a.Target.CheckOneRegion(); err != nil {
		return nil, err
	}
	p.Qualifier = a.Target.Qualifier
	if err := CheckNetwork(p, other); err != nil {
		return nil, err
	}
	body, err := cfn.RenderNetworkKind("network", p, cfn.AccepterParams{}, cfn.JSON)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, errkind.Invalid)
	}
	r := a.Target.Regions[0]
	plan := &AWSDeploy{Regions: []*RegionDeploy{{Region: r, d: a.deployer(r),
		stack: deploy.Stack{Name: a.Target.NetworkStackName(), TemplateBody: string(body)}}}}
	err = plan.each(func(r *RegionDeploy) (err error) {
		r.Plan, err = r.d.Plan(ctx, r.stack)
		return err
	})
	if err != nil {
		plan.Discard(context.WithoutCancel(ctx))
		return nil, err
	}
	return plan, nil
}

// NetworkStatus describes the network stack of every target region.
func (a *AWS) NetworkStatus(ctx context.Context) ([]RegionStatus, error) {
	return a.stackStatus(ctx, a.Target.NetworkStackName())
}
