package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// Bad sign-in and address flags stop berth server before it opens
// anything, with a message naming the flag.
func TestServerFlagErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--oidc-issuer", "https://id.example.com"}, "--oidc-issuer and --oidc-client-id go together"},
		{[]string{"--oidc-client-id", "x"}, "--oidc-issuer and --oidc-client-id go together"},
		{[]string{"--oidc-client-secret-file", "f"}, "needs --oidc-issuer"},
		{[]string{"--oidc-issuer", "http://id.example.com", "--oidc-client-id", "x"}, "want the provider's https address"},
		{[]string{"--oidc-issuer", "https://id.example.com", "--oidc-client-id", "x", "--oidc-client-secret-file", filepath.Join(dir, "missing")}, "--oidc-client-secret-file"},
		{[]string{"--public-url", "berth.example.com"}, "--public-url"},
		{[]string{"--tls-key", "k.pem"}, "--tls-cert and --tls-key go together"},
		{[]string{"--trusted-proxy", "10.0.0.0/33"}, "--trusted-proxy \"10.0.0.0/33\": want an address or CIDR"},
		{[]string{"--trusted-proxy", "proxy.internal"}, "--trusted-proxy \"proxy.internal\""},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		g := &Globals{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Env: func(string) string { return "" }}
		args := append([]string{"server", "--data-dir", dir, "--listen", "127.0.0.1:0"}, tt.args...)
		if code := Main(context.Background(), args, g); code != ExitUsage || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s", tt.args, code, ExitUsage, tt.want, stderr.String())
		}
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, "*")); len(matches) != 0 {
		t.Errorf("refused starts left files: %v", matches)
	}
}
