package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// On a terminal, gc --delete shows what it would delete and deletes only
// after a yes.
func TestGCAsksOnTerminal(t *testing.T) {
	dir := t.TempDir()
	orphan := filepath.Join(dir, "store", "app", "1.0.0", "data", "lost")
	if err := os.MkdirAll(filepath.Dir(orphan), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(orphan, []byte("lost race"), 0o644); err != nil {
		t.Fatal(err)
	}
	then := time.Now().Add(-48 * time.Hour)
	os.Chtimes(orphan, then, then)
	env := func(k string) string {
		switch k {
		case "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME":
			return filepath.Join(dir, k)
		}
		return ""
	}
	for _, tc := range []struct {
		answer string
		gone   bool
	}{{"n\n", false}, {"y\n", true}} {
		var stdout, stderr bytes.Buffer
		g := &Globals{Stdin: strings.NewReader(tc.answer), Stdout: &stdout, Stderr: &stderr, StdinTerminal: true, Env: env}
		if code := Main(context.Background(), []string{"gc", "--delete", "--store", "s=file://" + filepath.Join(dir, "store")}, g); code != 0 {
			t.Fatalf("answer %q: exit %d\n%s%s", tc.answer, code, stdout.String(), stderr.String())
		}
		if !strings.Contains(stdout.String(), "found app/1.0.0/data/lost") || !strings.Contains(stderr.String(), "[y/N]") {
			t.Fatalf("answer %q: not shown before the question:\n%s%s", tc.answer, stdout.String(), stderr.String())
		}
		if _, err := os.Stat(orphan); (err != nil) != tc.gone {
			t.Fatalf("answer %q: orphan gone = %v", tc.answer, err != nil)
		}
		if tc.gone && !strings.Contains(stdout.String(), "removed app/1.0.0/data/lost") {
			t.Fatalf("no removal reported:\n%s", stdout.String())
		}
	}
}
