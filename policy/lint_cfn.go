package policy

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// cfnString renders a CloudFormation intrinsic function as the string it
// stands for, with unknown parts as ${...} so the ARN and wildcard checks
// treat them as variables: Ref X is ${X}, Fn::GetAtt [A, B] is ${A.B},
// Fn::Sub keeps its template, Fn::Join joins its parts.
func cfnString(n *yaml.Node) (string, bool) {
	name, arg := intrinsic(n)
	switch name {
	case "Ref":
		return "${" + arg.Value + "}", arg.Kind == yaml.ScalarNode
	case "Fn::GetAtt":
		if arg.Kind == yaml.ScalarNode {
			return "${" + arg.Value + "}", true
		}
		if arg.Kind == yaml.SequenceNode && len(arg.Content) == 2 {
			return "${" + arg.Content[0].Value + "." + arg.Content[1].Value + "}", true
		}
	case "Fn::Sub":
		if arg.Kind == yaml.ScalarNode {
			return arg.Value, true
		}
		if arg.Kind == yaml.SequenceNode && len(arg.Content) > 0 && arg.Content[0].Kind == yaml.ScalarNode {
			return arg.Content[0].Value, true
		}
	case "Fn::Join":
		if arg.Kind == yaml.SequenceNode && len(arg.Content) == 2 && arg.Content[1].Kind == yaml.SequenceNode {
			var parts []string
			for _, p := range arg.Content[1].Content {
				if isIntrinsic(p) {
					s, ok := cfnString(p)
					if !ok {
						return "", false
					}
					parts = append(parts, s)
				} else {
					parts = append(parts, p.Value)
				}
			}
			return strings.Join(parts, arg.Content[0].Value), true
		}
	case "":
		return "", false
	}
	// Fn::If, Fn::Select, Fn::ImportValue...: a value not known here.
	return "${" + name + "}", true
}

// intrinsic returns the function name and argument of an intrinsic node.
func intrinsic(n *yaml.Node) (string, *yaml.Node) {
	if len(n.Tag) > 1 && n.Tag[0] == '!' && n.Tag[1] != '!' {
		name := n.Tag[1:]
		if name != "Ref" && name != "Condition" {
			name = "Fn::" + name
		}
		arg := *n
		arg.Tag = ""
		if name == "Fn::GetAtt" && n.Kind == yaml.ScalarNode {
			arg.Value = n.Value
		}
		return name, &arg
	}
	if n.Kind == yaml.MappingNode && len(n.Content) == 2 {
		return n.Content[0].Value, n.Content[1]
	}
	return "", nil
}

// template lints every policy in a CloudFormation template.
func (l *linter) template(root *yaml.Node) {
	res := lookup(root, "Resources")
	if res == nil {
		l.add(root, "", "unrecognized-input", SeverityError, "the template has no Resources", "")
		return
	}
	entries, err := mapEntries(res, "Resources")
	if err != nil {
		l.parseError(err)
		return
	}
	for _, e := range entries {
		name, body := e[0].Value, e[1]
		path := "Resources." + name
		typ := lookup(body, "Type")
		props := lookup(body, "Properties")
		if typ == nil || props == nil {
			continue
		}
		pp := path + ".Properties"
		switch typ.Value {
		case "AWS::IAM::Role":
			l.role(props, pp, cfnString, true)
		case "AWS::IAM::User", "AWS::IAM::Group":
			l.role(props, pp, cfnString, false)
		case "AWS::IAM::ManagedPolicy":
			if d := lookup(props, "PolicyDocument"); d != nil {
				l.policy(d, pp+".PolicyDocument", roleIdentity, MaxManagedPolicySize, cfnString)
			}
		case "AWS::IAM::Policy", "AWS::IAM::RolePolicy", "AWS::IAM::UserPolicy", "AWS::IAM::GroupPolicy":
			if d := lookup(props, "PolicyDocument"); d != nil {
				l.policy(d, pp+".PolicyDocument", roleIdentity, MaxRoleInlineSize, cfnString)
			}
		case "AWS::KMS::Key":
			if d := lookup(props, "KeyPolicy"); d != nil {
				l.policy(d, pp+".KeyPolicy", roleResource, 32768, cfnString)
			}
		default:
			// Bucket, queue, topic and other resource policies.
			if d := lookup(props, "PolicyDocument"); d != nil {
				limit := 0
				if typ.Value == "AWS::S3::BucketPolicy" {
					limit = MaxBucketPolicySize
				}
				l.policy(d, pp+".PolicyDocument", roleResource, limit, cfnString)
			}
		}
	}
}
