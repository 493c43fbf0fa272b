package cfn

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/cloudformation/ec2"
	"github.com/awslabs/goformation/v7/cloudformation/iam"
	"github.com/awslabs/goformation/v7/cloudformation/tags"

	"github.com/berth-dev/berth/policy"
)

// NetworkParams are the inputs of the network template: the data plane's
// VPC and its links.
type NetworkParams struct {
	Qualifier string
	CIDR      string // the VPC's IPv4 range, e.g. 10.40.0.0/16
	AZs       int    // availability zones with a subnet; 0: 2

	Peers []Peer // VPC peering, requester side
	// InterfaceEndpoints are PrivateLink endpoint service names to reach
	// from the VPC (com.amazonaws.vpce.REGION.vpce-svc-...), private DNS on.
	InterfaceEndpoints []string
	// EndpointService, when set, offers a service in the VPC over
	// PrivateLink.
	EndpointService *EndpointService
}

// Peer is a customer VPC peered with the data plane VPC.
type Peer struct {
	Name    string // logical name: letters and digits
	VPCID   string
	Account string
	Region  string // "" : the stack's region
	CIDR    string // the peer VPC's range (IPv4 or IPv6), routed through the peering
	RoleARN string // the accepter role in the peer account (the peering-accepter template)
}

// EndpointService is the provider side of PrivateLink.
type EndpointService struct {
	NLBARNs           []string // network load balancers in the VPC
	AllowedPrincipals []string // ARNs allowed to connect; each connection still needs acceptance
}

// NetworkStackName is the network stack's name; it starts with the data
// plane stack's name, which the provisioner's stack permissions cover.
func NetworkStackName(qualifier string) string {
	return policy.DataPlaneStackName(qualifier) + "-network"
}

// PeeringAccepterRoleName is the accepter role's name in a peer account.
func PeeringAccepterRoleName(qualifier string) string {
	return policy.PeeringAccepterRoleName(qualifier)
}

var (
	peerNameRe    = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]{0,31}$`)
	vpcIDRe       = regexp.MustCompile(`^vpc-[0-9a-f]{8,17}$`)
	rtbIDRe       = regexp.MustCompile(`^rtb-[0-9a-f]{8,17}$`)
	accountRe     = regexp.MustCompile(`^[0-9]{12}$`)
	regionRe      = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	serviceNameRe = regexp.MustCompile(`^com\.amazonaws\.[a-z0-9.-]+$`)
	nlbARNRe      = regexp.MustCompile(`^arn:[a-z-]+:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}:loadbalancer/net/[A-Za-z0-9-]+/[0-9a-f]+$`)
	principalRe   = regexp.MustCompile(`^(\*|arn:[a-z-]+:iam::[0-9]{12}:(root|role/[\w+=,.@/-]+|user/[\w+=,.@/-]+))$`)
	roleARNRe     = regexp.MustCompile(`^arn:[a-z-]+:iam::[0-9]{12}:role/[\w+=,.@/-]+$`)
)

// ParseCIDR parses a CIDR in canonical form (no host bits set).
func ParseCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR such as 10.40.0.0/16 or fd00::/56", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("CIDR %s has host bits set: did you mean %s?", s, p.Masked())
	}
	return p, nil
}

func (p NetworkParams) check() (NetworkParams, netip.Prefix, error) {
	if p.Qualifier == "" {
		p.Qualifier = policy.DefaultQualifier
	}
	if !qualifierRe.MatchString(p.Qualifier) {
		return p, netip.Prefix{}, fmt.Errorf("invalid qualifier %q: 1-20 lower-case letters, digits and hyphens", p.Qualifier)
	}
	if p.CIDR == "" {
		return p, netip.Prefix{}, fmt.Errorf("a VPC CIDR is required (--cidr), such as 10.40.0.0/16")
	}
	vpc, err := ParseCIDR(p.CIDR)
	if err != nil {
		return p, vpc, fmt.Errorf("--cidr: %v", err)
	}
	// A VPC's primary range is IPv4, /16 to /28.
	if !vpc.Addr().Is4() || vpc.Bits() < 16 || vpc.Bits() > 28 {
		return p, vpc, fmt.Errorf("--cidr %s: a VPC takes an IPv4 range from /16 to /28", p.CIDR)
	}
	if p.AZs == 0 {
		p.AZs = 2
	}
	if p.AZs < 1 || p.AZs > 6 {
		return p, vpc, fmt.Errorf("--azs %d: use 1 to 6", p.AZs)
	}
	if _, err := SubnetCIDRs(vpc, p.AZs); err != nil {
		return p, vpc, err
	}
	names := map[string]bool{}
	for _, peer := range p.Peers {
		switch {
		case !peerNameRe.MatchString(peer.Name):
			return p, vpc, fmt.Errorf("peer name %q: a letter, then up to 31 letters and digits", peer.Name)
		case names[peer.Name]:
			return p, vpc, fmt.Errorf("peer name %q is used twice", peer.Name)
		case !vpcIDRe.MatchString(peer.VPCID):
			return p, vpc, fmt.Errorf("peer %s: VPC ID %q is not like vpc-0123456789abcdef0", peer.Name, peer.VPCID)
		case !accountRe.MatchString(peer.Account):
			return p, vpc, fmt.Errorf("peer %s: account %q is not 12 digits", peer.Name, peer.Account)
		case peer.Region != "" && !regionRe.MatchString(peer.Region):
			return p, vpc, fmt.Errorf("peer %s: %q is not a region such as eu-west-1", peer.Name, peer.Region)
		case !roleARNRe.MatchString(peer.RoleARN):
			return p, vpc, fmt.Errorf("peer %s: accepter role %q is not a role ARN (render it with berth template render peering-accepter)", peer.Name, peer.RoleARN)
		}
		if _, err := ParseCIDR(peer.CIDR); err != nil {
			return p, vpc, fmt.Errorf("peer %s: %v", peer.Name, err)
		}
		names[peer.Name] = true
	}
	for _, s := range p.InterfaceEndpoints {
		if !serviceNameRe.MatchString(s) {
			return p, vpc, fmt.Errorf("endpoint service name %q is not like com.amazonaws.vpce.eu-west-1.vpce-svc-0123456789abcdef0", s)
		}
	}
	if es := p.EndpointService; es != nil {
		if len(es.NLBARNs) == 0 {
			return p, vpc, fmt.Errorf("an endpoint service needs at least one network load balancer ARN")
		}
		for _, a := range es.NLBARNs {
			if !nlbARNRe.MatchString(a) {
				return p, vpc, fmt.Errorf("%q is not a network load balancer ARN", a)
			}
		}
		for _, a := range es.AllowedPrincipals {
			if !principalRe.MatchString(a) || a == "*" {
				return p, vpc, fmt.Errorf("allowed principal %q: give an account root, role or user ARN (\"*\" would let anyone request a connection)", a)
			}
		}
	}
	return p, vpc, nil
}

// SubnetCIDRs splits vpc into n equal subnets, rounded up to a power of
// two: a /16 in 3 AZs gives four /18s, of which the first three are used.
func SubnetCIDRs(vpc netip.Prefix, n int) ([]netip.Prefix, error) {
	extra := 0
	for 1<<extra < n {
		extra++
	}
	bits := vpc.Bits() + extra
	if bits > 28 {
		return nil, fmt.Errorf("--cidr %s is too small for %d subnets (a subnet is at least a /28)", vpc, n)
	}
	out := make([]netip.Prefix, 0, n)
	base := vpc.Addr().As4()
	v := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	for i := 0; i < n; i++ {
		a := v + uint32(i)<<(32-bits)
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}), bits))
	}
	return out, nil
}

// resource is a resource whose goformation type lacks a property the
// registry schema has (Tags on VPC endpoints and endpoint services, which
// the provisioner's tag-scoped permissions need). Its intrinsics must be
// goformation's encoded strings (cloudformation.Ref, Sub): goformation
// evaluates raw intrinsic maps when it renders.
type resource struct {
	Type       string
	Properties map[string]any
}

func (r *resource) AWSCloudFormationType() string { return r.Type }

func (r *resource) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Type       string
		Properties map[string]any
	}{r.Type, r.Properties})
}

// Network is the data plane VPC with its links: subnets in the first AZs
// of the region (Fn::GetAZs), one private route table, an S3 gateway
// endpoint on it so build traffic to S3 stays off any NAT, the requester
// side of each peering with routes to the peer, interface endpoints, and
// an endpoint service. Every resource carries the qualifier tag the
// provisioner's EC2 permissions are scoped by.
func Network(p NetworkParams) (*Result, error) {
	p, vpc, err := p.check()
	if err != nil {
		return nil, fmt.Errorf("render network template: %w", err)
	}
	subnets, _ := SubnetCIDRs(vpc, p.AZs)
	t := cloudformation.NewTemplate()
	t.Description = fmt.Sprintf("berth data plane network (qualifier %s): VPC %s, %d subnets, S3 gateway endpoint, peering and PrivateLink", p.Qualifier, vpc, p.AZs)
	tagged := func(name string) []tags.Tag {
		return []tags.Tag{{Key: policy.QualifierTagKey, Value: p.Qualifier}, {Key: "Name", Value: p.Qualifier + "-" + name}}
	}
	tagList := func(name string) []map[string]string {
		var out []map[string]string
		for _, tg := range tagged(name) {
			out = append(out, map[string]string{"Key": tg.Key, "Value": tg.Value})
		}
		return out
	}
	t.Resources["VPC"] = &ec2.VPC{CidrBlock: str(vpc.String()), EnableDnsSupport: cloudformation.Bool(true),
		EnableDnsHostnames: cloudformation.Bool(true), Tags: tagged("dataplane")}
	t.Resources["RouteTable"] = &ec2.RouteTable{VpcId: cloudformation.Ref("VPC"), Tags: tagged("private")}
	var subnetRefs []string
	for i, c := range subnets {
		name := fmt.Sprintf("Subnet%d", i+1)
		t.Resources[name] = &ec2.Subnet{VpcId: cloudformation.Ref("VPC"), CidrBlock: str(c.String()),
			AvailabilityZone: cloudformation.SelectPtr(i, cloudformation.GetAZs("")), Tags: tagged(fmt.Sprintf("private-%d", i+1))}
		t.Resources[name+"RouteTable"] = &ec2.SubnetRouteTableAssociation{SubnetId: cloudformation.Ref(name), RouteTableId: cloudformation.Ref("RouteTable")}
		subnetRefs = append(subnetRefs, cloudformation.Ref(name))
	}
	t.Resources["S3Endpoint"] = &resource{Type: "AWS::EC2::VPCEndpoint", Properties: map[string]any{
		"VpcEndpointType": "Gateway", "VpcId": cloudformation.Ref("VPC"),
		"ServiceName":   cloudformation.Sub("com.amazonaws.${AWS::Region}.s3"),
		"RouteTableIds": []string{cloudformation.Ref("RouteTable")}, "Tags": tagList("s3"),
	}}
	for _, peer := range p.Peers {
		pc := &ec2.VPCPeeringConnection{VpcId: cloudformation.Ref("VPC"), PeerVpcId: peer.VPCID, PeerOwnerId: str(peer.Account),
			PeerRoleArn: str(peer.RoleARN), Tags: tagged("peer-" + strings.ToLower(peer.Name))}
		if peer.Region != "" {
			pc.PeerRegion = str(peer.Region)
		}
		t.Resources["Peering"+peer.Name] = pc
		route := &ec2.Route{RouteTableId: cloudformation.Ref("RouteTable"), VpcPeeringConnectionId: cloudformation.RefPtr("Peering" + peer.Name)}
		if c, _ := ParseCIDR(peer.CIDR); c.Addr().Is4() {
			route.DestinationCidrBlock = str(c.String())
		} else {
			route.DestinationIpv6CidrBlock = str(c.String())
		}
		t.Resources["RouteTo"+peer.Name] = route
		t.Outputs["Peering"+peer.Name+"Id"] = cloudformation.Output{Value: cloudformation.Ref("Peering" + peer.Name)}
	}
	if len(p.InterfaceEndpoints) > 0 {
		t.Resources["EndpointSecurityGroup"] = &ec2.SecurityGroup{
			GroupDescription: "berth " + p.Qualifier + ": HTTPS from the data plane VPC to its interface endpoints",
			VpcId:            cloudformation.RefPtr("VPC"),
			SecurityGroupIngress: []ec2.SecurityGroup_Ingress{{IpProtocol: "tcp", FromPort: cloudformation.Int(443), ToPort: cloudformation.Int(443),
				CidrIp: str(vpc.String()), Description: str("the data plane VPC")}},
			Tags: tagged("endpoints"),
		}
		for i, s := range p.InterfaceEndpoints {
			t.Resources[fmt.Sprintf("InterfaceEndpoint%d", i+1)] = &resource{Type: "AWS::EC2::VPCEndpoint", Properties: map[string]any{
				"VpcEndpointType": "Interface", "VpcId": cloudformation.Ref("VPC"), "ServiceName": s,
				"PrivateDnsEnabled": true, "SubnetIds": subnetRefs,
				"SecurityGroupIds": []string{cloudformation.Ref("EndpointSecurityGroup")}, "Tags": tagList(fmt.Sprintf("endpoint-%d", i+1)),
			}}
			t.Outputs[fmt.Sprintf("InterfaceEndpoint%dId", i+1)] = cloudformation.Output{Value: cloudformation.Ref(fmt.Sprintf("InterfaceEndpoint%d", i+1))}
		}
	}
	if es := p.EndpointService; es != nil {
		t.Resources["EndpointService"] = &resource{Type: "AWS::EC2::VPCEndpointService", Properties: map[string]any{
			"AcceptanceRequired": true, "NetworkLoadBalancerArns": es.NLBARNs, "Tags": tagList("service"),
		}}
		if len(es.AllowedPrincipals) > 0 {
			t.Resources["EndpointServicePermissions"] = &ec2.VPCEndpointServicePermissions{ServiceId: cloudformation.Ref("EndpointService"),
				AllowedPrincipals: es.AllowedPrincipals}
		}
		t.Outputs["EndpointServiceId"] = cloudformation.Output{Value: cloudformation.Ref("EndpointService")}
	}
	t.Outputs["VpcId"] = cloudformation.Output{Value: cloudformation.Ref("VPC")}
	t.Outputs["VpcCidr"] = cloudformation.Output{Value: vpc.String()}
	t.Outputs["RouteTableId"] = cloudformation.Output{Value: cloudformation.Ref("RouteTable")}
	t.Outputs["SubnetIds"] = cloudformation.Output{Value: cloudformation.Join(",", subnetRefs)}
	t.Outputs["S3EndpointId"] = cloudformation.Output{Value: cloudformation.Ref("S3Endpoint")}
	return &Result{Template: t}, nil
}

// AccepterParams are the inputs of the peering-accepter template, which the
// customer deploys in the peer account.
type AccepterParams struct {
	Qualifier        string
	DataPlaneAccount string   // the account whose provisioner requests the peering
	VPCID            string   // the customer's VPC to be peered
	DataPlaneCIDR    string   // routed through the peering
	RouteTableIDs    []string // the customer's route tables that get the route
}

// PeeringAccepter is the customer's side of a peering: a role that only the
// data plane account's provisioner role may assume, allowed only to accept
// peerings of the given VPC requested from the data plane account; and,
// once the PeeringConnectionId parameter is set (after the data plane's
// network stack created the peering), routes to the data plane's range.
func PeeringAccepter(p AccepterParams) (*Result, error) {
	if p.Qualifier == "" {
		p.Qualifier = policy.DefaultQualifier
	}
	if !qualifierRe.MatchString(p.Qualifier) {
		return nil, fmt.Errorf("render peering-accepter template: invalid qualifier %q", p.Qualifier)
	}
	if !accountRe.MatchString(p.DataPlaneAccount) {
		return nil, fmt.Errorf("render peering-accepter template: --dataplane-account %q is not 12 digits", p.DataPlaneAccount)
	}
	if !vpcIDRe.MatchString(p.VPCID) {
		return nil, fmt.Errorf("render peering-accepter template: --vpc %q is not like vpc-0123456789abcdef0", p.VPCID)
	}
	cidr, err := ParseCIDR(p.DataPlaneCIDR)
	if err != nil {
		return nil, fmt.Errorf("render peering-accepter template: --dataplane-cidr: %v", err)
	}
	for _, r := range p.RouteTableIDs {
		if !rtbIDRe.MatchString(r) {
			return nil, fmt.Errorf("render peering-accepter template: --route-table %q is not like rtb-0123456789abcdef0", r)
		}
	}
	t := cloudformation.NewTemplate()
	t.Description = fmt.Sprintf("berth peering accepter (qualifier %s): lets the data plane account %s peer with %s", p.Qualifier, p.DataPlaneAccount, p.VPCID)
	provisioner := "arn:${AWS::Partition}:iam::" + p.DataPlaneAccount + ":role/" + p.Qualifier + "-provisioner"
	trust, err := subst(&policy.Document{Version: policy.Version2012, Statement: []policy.Statement{{
		Sid: "DataPlaneProvisioner", Effect: "Allow", Principal: policy.AWSPrincipal("arn:${AWS::Partition}:iam::" + p.DataPlaneAccount + ":root"),
		Action:    policy.Values{"sts:AssumeRole"},
		Condition: policy.Condition{"ArnEquals": {"aws:PrincipalArn": {provisioner}}},
	}}})
	if err != nil {
		return nil, err
	}
	accept, err := subst(&policy.Document{Version: policy.Version2012, Statement: []policy.Statement{{
		Sid: "AcceptDataPlanePeering", Effect: "Allow", Action: policy.Values{"ec2:AcceptVpcPeeringConnection"},
		Resource: policy.Values{"arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:vpc/" + p.VPCID,
			"arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:vpc-peering-connection/*"},
		Condition: policy.Condition{"ArnLike": {"ec2:RequesterVpc": {"arn:${AWS::Partition}:ec2:*:" + p.DataPlaneAccount + ":vpc/*"}}},
	}}})
	if err != nil {
		return nil, err
	}
	t.Resources["AccepterRole"] = &iam.Role{
		RoleName:                 str(PeeringAccepterRoleName(p.Qualifier)),
		Description:              str("berth: the data plane account's provisioner accepts VPC peerings with " + p.VPCID),
		AssumeRolePolicyDocument: trust,
		MaxSessionDuration:       cloudformation.Int(3600),
		Policies:                 []iam.Role_Policy{{PolicyName: "accept-peering", PolicyDocument: accept}},
		Tags:                     []tags.Tag{{Key: policy.QualifierTagKey, Value: p.Qualifier}},
	}
	t.Outputs["AccepterRoleArn"] = cloudformation.Output{Value: cloudformation.GetAtt("AccepterRole", "Arn")}
	if len(p.RouteTableIDs) > 0 {
		t.Parameters["PeeringConnectionId"] = cloudformation.Parameter{Type: "String", Default: "",
			Description:    str("The peering's ID (pcx-...), from the data plane's network stack; routes are added once it is set"),
			AllowedPattern: str(`^(pcx-[0-9a-f]{8,17})?$`)}
		t.Conditions["HasPeering"] = cloudformation.Not([]string{cloudformation.Equals(cloudformation.Ref("PeeringConnectionId"), "")})
		for i, rt := range p.RouteTableIDs {
			route := &ec2.Route{RouteTableId: rt, VpcPeeringConnectionId: cloudformation.RefPtr("PeeringConnectionId"),
				AWSCloudFormationCondition: "HasPeering"}
			if cidr.Addr().Is4() {
				route.DestinationCidrBlock = str(cidr.String())
			} else {
				route.DestinationIpv6CidrBlock = str(cidr.String())
			}
			t.Resources[fmt.Sprintf("RouteToDataPlane%d", i+1)] = route
		}
	}
	return &Result{Template: t}, nil
}

// RenderNetworkKind renders "network" from np or "peering-accepter" from
// ap: the network kinds of `berth template render`.
func RenderNetworkKind(kind string, np NetworkParams, ap AccepterParams, f Format) ([]byte, error) {
	var (
		r   *Result
		err error
	)
	switch kind {
	case "network":
		r, err = Network(np)
	case "peering-accepter":
		r, err = PeeringAccepter(ap)
	default:
		return nil, fmt.Errorf("render template %q: %w (known: network, peering-accepter)", kind, ErrUnknownTemplate)
	}
	if err != nil {
		return nil, err
	}
	return r.Render(f)
}
