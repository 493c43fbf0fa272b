package cli

import (
	"context"
	"path/filepath"
	"testing"
)

func TestPolicyRenderCITrust(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	out := filepath.Join(dir, "ci.json")
	for _, args := range [][]string{
		{"--provider", "github", "--repo", "acme/api", "--branch", "main", "--account", "123456789012"},
		{"--provider", "terraform-cloud", "--organization", "acme", "--workspace", "prod", "--account", "123456789012"},
	} {
		code, _, stderr := runBerth(t, ctx, nil, append([]string{"policy", "render", "ci-trust", "-o", out}, args...)...)
		if code != 0 {
			t.Fatalf("render %v: exit %d\n%s", args, code, stderr)
		}
		// What berth renders, berth's linter passes, warnings included.
		if code, stdout, stderr := runBerth(t, ctx, nil, "policy", "lint", "--fail-on", "warning", out); code != 0 {
			t.Errorf("lint of ci-trust %v: exit %d\n%s%s", args, code, stdout, stderr)
		}
	}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"wildcard branch", []string{"ci-trust", "--provider", "github", "--repo", "acme/api", "--branch", "*", "--account", "123456789012"}, "--branch-wildcard"},
		{"bad repo", []string{"ci-trust", "--provider", "github", "--repo", "acme", "--account", "123456789012"}, "OWNER/REPO"},
		{"another kind's flag", []string{"ci-trust", "--provider", "github", "--repo", "acme/api", "--account", "123456789012", "--bucket", "b-1"}, "ci-trust does not take --bucket"},
		{"ci-trust flag on another kind", []string{"artifact-read", "--bucket", "releases", "--repo", "acme/api"}, "--repo is for ci-trust"},
	} {
		code, stdout, stderr := runBerth(t, ctx, nil, append([]string{"policy", "render"}, tt.args...)...)
		if code != ExitUsage || stdout != "" {
			t.Errorf("%s: exit %d, stdout %q; want exit 2 and nothing on stdout", tt.name, code, stdout)
		}
		wantIn(t, tt.name+" stderr", stderr, tt.want)
	}
}
