package testenv

import (
	"strings"
	"testing"
)

func TestLogScanner(t *testing.T) {
	l := &LogScanner{}
	log := l.Logger()
	log.Info("request", "path", "/api/v1/tokens", "status", 201)
	log.Debug("vend", "access_key", "AKIAEXAMPLE")
	if got := l.Leaks(); len(got) != 0 {
		t.Fatalf("clean log reported leaks: %q", got)
	}
	l.Secret("s3cr3t-external-id")
	log.Error("check failed", "detail", "assume role with external id s3cr3t-external-id refused")
	log.Info("auth", "header", "Bearer berth_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	leaks := l.Leaks()
	if len(leaks) != 2 || l.Lines() != 4 {
		t.Fatalf("leaks = %q in %d lines; want 2 of 4", leaks, l.Lines())
	}
	for _, line := range leaks {
		if strings.Contains(line, "s3cr3t") || strings.Contains(line, "AAAAAAAA") {
			t.Errorf("the report repeats the secret: %s", line)
		}
	}
}
