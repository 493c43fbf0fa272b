package cli

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/awsfake"
)

var networkTarget = []string{"--account", "111122223333", "--external-id", "ext-7d1f", "--regions", "eu-west-1"}

const accepterRole = "arn:aws:iam::444455556666:role/berth-peering-accepter"

// networkStack adds the network stack in eu-west-1 that a deploy creates.
func networkStack(s *awsfake.Server) *awsfake.Stack {
	st := &awsfake.Stack{Name: "berth-dataplane-network", Outputs: map[string]string{
		"VpcId": "vpc-0aaa1111bbbb2222c", "VpcCidr": "10.40.0.0/16", "SubnetIds": "subnet-01,subnet-02",
		"S3EndpointId": "vpce-0123", "PeeringBuildId": "pcx-0abc1234",
	}, Changes: []string{
		awsfake.ResourceChange("Add", "VPC", "", "AWS::EC2::VPC", ""),
		awsfake.ResourceChange("Add", "S3Endpoint", "", "AWS::EC2::VPCEndpoint", ""),
		awsfake.ResourceChange("Add", "PeeringBuild", "", "AWS::EC2::VPCPeeringConnection", ""),
	}}
	s.AddStack("eu-west-1", st)
	return st
}

// TestNetworkPlanRefusesOverlap: overlapping ranges are refused before any
// call to AWS, and the message names each colliding pair.
func TestNetworkPlanRefusesOverlap(t *testing.T) {
	s := newFake(t)
	code, _, stderr := berth(t, append([]string{"dataplane", "network", "deploy", "--yes", "--cidr", "10.40.0.0/16",
		"--peer", "name=Build,vpc=vpc-0a1b2c3d,account=444455556666,cidr=10.40.64.0/18,role=" + accepterRole,
		"--reserved", "office=10.0.0.0/8"}, networkTarget...)...)
	if code != ExitUsage {
		t.Fatalf("exit %d, want %d", code, ExitUsage)
	}
	wantIn(t, "stderr", stderr, "data plane VPC 10.40.0.0/16 overlaps peer Build (vpc-0a1b2c3d) 10.40.64.0/18",
		"data plane VPC 10.40.0.0/16 overlaps office 10.0.0.0/8", "peer Build (vpc-0a1b2c3d) 10.40.64.0/18 overlaps office 10.0.0.0/8")
	if n := len(s.Calls()); n != 0 {
		t.Errorf("%d AWS calls before the refusal, want none", n)
	}
	code, _, stderr = berth(t, append([]string{"dataplane", "network", "plan", "--cidr", "fd00::/56"}, networkTarget...)...)
	if code != ExitUsage || !strings.Contains(stderr, "IPv4 range") {
		t.Errorf("IPv6 VPC range: exit %d, %s", code, stderr)
	}
	code, _, stderr = berth(t, "dataplane", "network", "plan", "--cidr", "10.40.0.0/16", "--account", "111122223333", "--external-id", "x1", "--regions", "eu-west-1,us-east-1")
	if code != ExitUsage || !strings.Contains(stderr, "one VPC in one region") {
		t.Errorf("two regions: exit %d, %s", code, stderr)
	}
}

// TestNetworkPlan creates a change set through the provisioner, prints it
// and deletes it: nothing is executed.
func TestNetworkPlan(t *testing.T) {
	s := newFake(t)
	s.Handle("sts", "AssumeRole", awsfake.AssumeRole())
	bootstrapVersion(s, currentBootstrap)
	st := networkStack(s)
	code, stdout, _ := berth(t, append([]string{"dataplane", "network", "plan", "--cidr", "10.40.0.0/16", "--azs", "3"}, networkTarget...)...)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	wantIn(t, "stdout", stdout, "stack berth-dataplane-network in eu-west-1: create, 3 changes")
	if len(s.Called("cloudformation", "ExecuteChangeSet")) != 0 || len(s.Called("cloudformation", "DeleteChangeSet")) != 1 {
		t.Errorf("plan executed or kept its change set: %d executed, %d deleted",
			len(s.Called("cloudformation", "ExecuteChangeSet")), len(s.Called("cloudformation", "DeleteChangeSet")))
	}
	wantIn(t, "template", compact(t, st.Template), `"CidrBlock":"10.40.128.0/18"`, `"Fn::GetAZs":""`, `"com.amazonaws.${AWS::Region}.s3"`)
}

// TestNetworkDeploy deploys with a peer through the provisioner role.
func TestNetworkDeploy(t *testing.T) {
	s := newFake(t)
	s.Handle("sts", "AssumeRole", awsfake.AssumeRole())
	bootstrapVersion(s, currentBootstrap)
	st := networkStack(s)
	code, stdout, stderr := berth(t, append([]string{"dataplane", "network", "deploy", "--yes", "--cidr", "10.40.0.0/16",
		"--peer", "name=Build,vpc=vpc-0a1b2c3d,account=444455556666,cidr=10.50.0.0/16,role=" + accepterRole}, networkTarget...)...)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	wantIn(t, "stdout", stdout, "network in eu-west-1: VPC vpc-0aaa1111bbbb2222c (10.40.0.0/16)", "peering Build: pcx-0abc1234",
		"PeeringConnectionId=pcx-0abc1234")
	wantIn(t, "stderr", stderr, "acting as arn:aws:iam::111122223333:role/berth-provisioner")
	wantIn(t, "template", compact(t, st.Template), `"PeerRoleArn":"`+accepterRole+`"`, `"DestinationCidrBlock":"10.50.0.0/16"`,
		`{"Key":"berth:qualifier","Value":"berth"}`)
	if len(s.Called("cloudformation", "ExecuteChangeSet")) != 1 {
		t.Error("the change set was not executed")
	}
	for _, c := range s.Calls() {
		if c.Service == "cloudformation" && c.AccessKeyID != awsfake.AssumedKeyID {
			t.Errorf("%s signed with %s, not the provisioner's key", c.Action, c.AccessKeyID)
		}
	}
}

// TestNetworkDeployOlderBootstrap: a bootstrap without the EC2 permissions
// is refused before a change set is made.
func TestNetworkDeployOlderBootstrap(t *testing.T) {
	s := newFake(t)
	s.Handle("sts", "AssumeRole", awsfake.AssumeRole())
	bootstrapVersion(s, "2")
	networkStack(s)
	code, _, stderr := berth(t, append([]string{"dataplane", "network", "deploy", "--yes", "--cidr", "10.40.0.0/16"}, networkTarget...)...)
	if code != ExitUsage {
		t.Fatalf("exit %d, want %d", code, ExitUsage)
	}
	wantIn(t, "stderr", stderr, "is version 2 and this berth needs "+currentBootstrap)
	if len(s.Called("cloudformation", "CreateChangeSet")) != 0 {
		t.Error("a change set was created")
	}
}

// TestNetworkStatus reads the stack through the ops role; AccessDenied is
// exit 4.
func TestNetworkStatus(t *testing.T) {
	s := newFake(t)
	s.Handle("sts", "AssumeRole", awsfake.AssumeRole())
	st := networkStack(s)
	st.Status = "CREATE_COMPLETE"
	code, stdout, stderr := berth(t, append([]string{"dataplane", "network", "status"}, networkTarget...)...)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	wantIn(t, "stdout", stdout, "eu-west-1  berth-dataplane-network  CREATE_COMPLETE  vpc-0aaa1111bbbb2222c  10.40.0.0/16")
	wantIn(t, "stderr", stderr, "acting as arn:aws:iam::111122223333:role/berth-ops")

	s2 := newFake(t)
	s2.Handle("sts", "AssumeRole", awsfake.AssumeRole())
	s2.Handle("cloudformation", "DescribeStacks", awsfake.Error(403, "AccessDenied", "User is not authorized to perform: cloudformation:DescribeStacks"))
	code, _, _ = berth(t, append([]string{"dataplane", "network", "status"}, networkTarget...)...)
	if code != ExitDenied {
		t.Errorf("access denied: exit %d, want %d", code, ExitDenied)
	}
}

func TestTemplateRenderNetwork(t *testing.T) {
	code, stdout, _ := berth(t, "template", "render", "network", "--qualifier", "acme", "--cidr", "10.40.0.0/16", "--azs", "3", "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	wantIn(t, "template", stdout, `"CidrBlock": "10.40.128.0/18"`, `"Value": "acme"`)
	code, stdout, _ = berth(t, "template", "render", "peering-accepter", "--dataplane-account", "111122223333", "--vpc", "vpc-0a1b2c3d",
		"--dataplane-cidr", "10.40.0.0/16", "--route-table", "rtb-0123abcd")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	wantIn(t, "template", stdout, "RoleName: berth-peering-accepter", "ec2:AcceptVpcPeeringConnection", "arn:${AWS::Partition}:iam::111122223333:role/berth-provisioner")
	if code, _, _ := berth(t, "template", "render", "network", "--cidr", "10.40.0.1/16"); code != ExitUsage {
		t.Errorf("host bits: exit %d", code)
	}
}
