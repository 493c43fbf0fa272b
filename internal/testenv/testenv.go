// Package testenv starts real servers for tests and finds the tools they
// need. A missing tool skips the test, unless BERTH_REQUIRE_SERVERS=1 is set
// (CI sets it), in which case the test fails instead.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// RequireServersEnv names the variable that turns skips into failures.
const RequireServersEnv = "BERTH_REQUIRE_SERVERS"

const installHint = "install it with scripts/install-tools.sh"

// Require skips the test with reason, or fails it when servers are required.
func Require(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv(RequireServersEnv) == "1" {
		t.Fatalf("%s (%s=1, so this is a failure, not a skip)", reason, RequireServersEnv)
	}
	t.Skip(reason)
}

// MinIOBinary returns the path of the minio server binary: $BERTH_MINIO,
// then minio on PATH, then $HOME/.cache/berth-tools/bin/minio.
func MinIOBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("BERTH_MINIO"); p != "" {
		if isExecutable(p) {
			return p
		}
		Require(t, "BERTH_MINIO="+p+" is not an executable file")
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".cache", "berth-tools", "bin", "minio")
		if isExecutable(p) {
			return p
		}
	}
	Require(t, "minio server binary not found (looked at $BERTH_MINIO, PATH, ~/.cache/berth-tools/bin/minio); "+installHint)
	return ""
}

// AWSCLI returns the path of a working aws command line.
func AWSCLI(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("aws")
	if err != nil {
		Require(t, "aws CLI not found on PATH; install the awscli package or "+installHint)
		return ""
	}
	// A pyenv or asdf shim is on PATH even when it has nothing to run.
	if out, err := exec.Command(p, "--version").CombinedOutput(); err != nil {
		Require(t, "aws CLI at "+p+" does not run: "+string(out))
	}
	return p
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
