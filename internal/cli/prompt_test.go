package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/config"
)

func TestConfirm(t *testing.T) {
	for _, tc := range []struct {
		yes      bool
		terminal bool
		answer   string
		want     bool
		err      bool
	}{
		{yes: true, want: true},
		{terminal: true, answer: "y\n", want: true},
		{terminal: true, answer: "YES\n", want: true},
		{terminal: true, answer: "n\n"},
		{terminal: true, answer: ""},
		{terminal: false, err: true}, // scripts must say --yes
	} {
		var stderr bytes.Buffer
		g := &Globals{Stdin: strings.NewReader(tc.answer), Stderr: &stderr, StdinTerminal: tc.terminal, Env: func(string) string { return "" }}
		g.setup()
		ok, err := g.confirm(tc.yes, "apply?")
		if ok != tc.want || (err != nil) != tc.err {
			t.Errorf("confirm(yes=%v, terminal=%v, %q) = %v, %v", tc.yes, tc.terminal, tc.answer, ok, err)
		}
		if tc.terminal && !tc.yes && !strings.Contains(stderr.String(), "apply? [y/N]") {
			t.Errorf("no question on stderr: %q", stderr.String())
		}
	}
}

// TestInitPrompts answers init's questions as a person at a terminal would,
// including a wrong answer that is asked again.
func TestInitPrompts(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "berth.yaml")
	answers := "not-a-store\neu=file://" + dir + "/eu\nus=file://" + dir + "/us\n\nreleases\n"
	var stdout, stderr bytes.Buffer
	g := &Globals{Stdin: strings.NewReader(answers), Stdout: &stdout, Stderr: &stderr, StdinTerminal: true, Env: os.Getenv}
	if code := Main(context.Background(), []string{"init", "--config", path}, g); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stderr.String(), "write NAME=URL") {
		t.Errorf("the wrong answer was not explained: %s", stderr.String())
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Regions) != 2 || c.Regions[1].Name != "us" || c.Prefix != "releases" {
		t.Fatalf("config = %+v", c)
	}
}
