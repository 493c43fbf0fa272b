package dataplane

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/berth-dev/berth/cfn"
	"github.com/berth-dev/berth/errkind"
)

func TestOverlaps(t *testing.T) {
	for _, c := range []struct {
		name    string
		a, b    string
		overlap bool
	}{
		{"identical", "10.0.0.0/16", "10.0.0.0/16", true},
		{"contained", "10.0.0.0/16", "10.0.128.0/24", true},
		{"containing", "10.0.128.0/24", "10.0.0.0/8", true},
		{"adjacent", "10.0.0.0/16", "10.1.0.0/16", false},
		{"adjacent below", "10.0.0.0/17", "10.0.128.0/17", false},
		{"last address", "10.0.0.0/16", "10.0.255.255/32", true},
		{"one past", "10.0.0.0/16", "10.1.0.0/32", false},
		{"everything", "0.0.0.0/0", "192.168.1.0/24", true},
		{"ipv4 and ipv6", "10.0.0.0/16", "fd00::/8", false},
		{"ipv6 contained", "fd00:1234::/56", "fd00:1234:0:ff::/64", true},
		{"ipv6 apart", "fd00:1234::/56", "fd00:1234:0:100::/56", false},
		{"ipv6 everything", "::/0", "2001:db8::/32", true},
		{"ipv4-mapped ipv6 apart", "::ffff:10.0.0.0/112", "10.1.0.0/24", false},
		{"ipv4-mapped ipv6 overlap", "::ffff:10.0.0.0/104", "10.20.0.0/16", true},
		{"ipv4-mapped ipv6 inside", "::ffff:10.0.1.0/120", "10.0.0.0/16", true},
		{"ipv6 range is no ipv4 range", "::/80", "10.0.0.0/8", false},
	} {
		got, err := Overlaps([]NamedCIDR{{"a", c.a}, {"b", c.b}})
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if (len(got) == 1) != c.overlap {
			t.Errorf("%s: Overlaps(%s, %s) = %v, want overlap %v", c.name, c.a, c.b, got, c.overlap)
		}
		// Symmetric.
		rev, _ := Overlaps([]NamedCIDR{{"b", c.b}, {"a", c.a}})
		if len(rev) != len(got) {
			t.Errorf("%s: not symmetric", c.name)
		}
	}
	for _, bad := range []string{"10.0.0.1/16", "10.0.0.0", "10.0.0.0/33", "fd00::1/64", "", "vpc-123"} {
		if _, err := Overlaps([]NamedCIDR{{"x", bad}}); !errors.Is(err, errkind.Invalid) {
			t.Errorf("Overlaps(%q) = %v, want invalid", bad, err)
		}
	}
}

func TestCheckNetworkNamesCollisions(t *testing.T) {
	p := cfn.NetworkParams{CIDR: "10.40.0.0/16", Peers: []cfn.Peer{
		{Name: "Build", VPCID: "vpc-0a1b2c3d", Account: "444455556666", CIDR: "10.40.128.0/20", RoleARN: "arn:aws:iam::444455556666:role/berth-peering-accepter"},
		{Name: "Lab", VPCID: "vpc-0f1e2d3c", Account: "444455556666", CIDR: "10.50.0.0/16", RoleARN: "arn:aws:iam::444455556666:role/berth-peering-accepter"},
	}}
	err := CheckNetwork(p, []NamedCIDR{{"office VPN", "10.50.10.0/24"}})
	if !errors.Is(err, ErrOverlap) || !errors.Is(err, errkind.Invalid) {
		t.Fatalf("CheckNetwork = %v, want ErrOverlap", err)
	}
	for _, want := range []string{"data plane VPC 10.40.0.0/16 overlaps peer Build (vpc-0a1b2c3d) 10.40.128.0/20",
		"peer Lab (vpc-0f1e2d3c) 10.50.0.0/16 overlaps office VPN 10.50.10.0/24"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	p.Peers[0].CIDR = "10.41.0.0/16"
	if err := CheckNetwork(p, nil); err != nil {
		t.Errorf("no overlap: %v", err)
	}
	if err := CheckNetwork(cfn.NetworkParams{CIDR: "10.0.0.0/8"}, nil); !errors.Is(err, errkind.Invalid) {
		t.Errorf("a /8 VPC: %v, want invalid", err)
	}
}

func TestParsePeer(t *testing.T) {
	ok := "name=Build,vpc=vpc-0a1b2c3d,account=444455556666,cidr=10.50.0.0/16,role=arn:aws:iam::444455556666:role/berth-peering-accepter,region=us-east-1"
	p, err := ParsePeer(ok)
	if err != nil || p.Name != "Build" || p.Region != "us-east-1" || p.RoleARN != "arn:aws:iam::444455556666:role/berth-peering-accepter" {
		t.Fatalf("ParsePeer = %+v, %v", p, err)
	}
	for _, bad := range []string{"", "name=Build", ok + ",name=X", ok + ",colour=red", "vpc", strings.Replace(ok, "cidr=", "cidr", 1)} {
		if _, err := ParsePeer(bad); !errors.Is(err, errkind.Invalid) {
			t.Errorf("ParsePeer(%q) = %v, want invalid", bad, err)
		}
	}
}

func TestParseNetworkFile(t *testing.T) {
	p, reserved, err := ParseNetworkFile([]byte(`cidr: 10.40.0.0/16
azs: 3
peers:
  - {name: Build, vpc: vpc-0a1b2c3d, account: "444455556666", cidr: 10.50.0.0/16, role: "arn:aws:iam::444455556666:role/berth-peering-accepter"}
interface_endpoints: [com.amazonaws.vpce.eu-west-1.vpce-svc-0123456789abcdef0]
endpoint_service:
  nlb_arns: ["arn:aws:elasticloadbalancing:eu-west-1:111122223333:loadbalancer/net/api/0123456789abcdef"]
  allowed_principals: ["arn:aws:iam::444455556666:root"]
reserved:
  - {name: office, cidr: 192.168.0.0/16}
`))
	if err != nil || p.CIDR != "10.40.0.0/16" || p.AZs != 3 || len(p.Peers) != 1 || p.Peers[0].VPCID != "vpc-0a1b2c3d" ||
		p.EndpointService == nil || len(reserved) != 1 || reserved[0].Name != "office" {
		t.Fatalf("ParseNetworkFile = %+v %+v %v", p, reserved, err)
	}
	if err := CheckNetwork(p, reserved); err != nil {
		t.Errorf("CheckNetwork: %v", err)
	}
	if _, _, err := ParseNetworkFile([]byte("cidr: 10.40.0.0/16\npeer: []\n")); !errors.Is(err, errkind.Invalid) {
		t.Errorf("unknown field: %v, want invalid", err)
	}
	if _, _, err := ParseNetworkFile(nil); err != nil {
		t.Errorf("empty file: %v", err)
	}
}

// FuzzOverlaps checks Overlaps against a brute-force comparison of the
// ranges' first and last addresses.
func FuzzOverlaps(f *testing.F) {
	for _, s := range [][2]string{{"10.0.0.0/16", "10.0.1.0/24"}, {"fd00::/8", "10.0.0.0/8"}, {"::ffff:10.0.0.0/104", "10.1.0.0/16"}, {"x", "10.0.0.0/33"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		got, err := Overlaps([]NamedCIDR{{"a", a}, {"b", b}})
		pa, ea := normalize(a)
		pb, eb := normalize(b)
		if (ea != nil || eb != nil) != (err != nil) {
			t.Fatalf("Overlaps(%q, %q) error %v, parse errors %v %v", a, b, err, ea, eb)
		}
		if err != nil {
			return
		}
		want := pa.Addr().BitLen() == pb.Addr().BitLen() && (pa.Contains(first(pb)) || pb.Contains(first(pa)))
		if (len(got) == 1) != want {
			t.Fatalf("Overlaps(%q, %q) = %v, want overlap %v", a, b, got, want)
		}
	})
}

func first(p netip.Prefix) netip.Addr { return p.Masked().Addr() }

// FuzzParsePeer: no panic; a parsed peer round-trips through its flag form.
func FuzzParsePeer(f *testing.F) {
	f.Add("name=Build,vpc=vpc-0a1b2c3d,account=444455556666,cidr=10.50.0.0/16,role=arn:aws:iam::444455556666:role/r")
	f.Add("name=,vpc=,account=,cidr=,role=,region=")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePeer(s)
		if err != nil {
			return
		}
		again, err := ParsePeer("name=" + p.Name + ",vpc=" + p.VPCID + ",account=" + p.Account + ",cidr=" + p.CIDR + ",role=" + p.RoleARN + ",region=" + p.Region)
		if err != nil || again != p {
			t.Fatalf("ParsePeer(%q) = %+v; its flag form gives %+v, %v", s, p, again, err)
		}
	})
}

// FuzzParseNetworkFile: no panic on any input.
func FuzzParseNetworkFile(f *testing.F) {
	f.Add([]byte("cidr: 10.40.0.0/16\npeers:\n  - {name: A, cidr: 10.1.0.0/16}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, reserved, err := ParseNetworkFile(b)
		if err == nil {
			_ = CheckNetwork(p, reserved)
		}
	})
}
