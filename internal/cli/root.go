// Package cli is berth's command line: one file per command group, each
// command a thin layer that parses flags, calls the library and prints.
package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// Globals holds what every command shares: streams, environment and the
// global flags. Main builds it; nothing in this package reads os.* itself.
type Globals struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Env            func(string) string
	// Terminal reports whether stderr (progress) and stdin (prompts) are terminals.
	StderrTerminal bool
	StdinTerminal  bool

	// StackPoll is how often stack deploys poll CloudFormation; zero is the
	// deploy package's default. Tests shorten it.
	StackPoll time.Duration

	ConfigPath string
	// configFrom says who named ConfigPath ("--config" or "BERTH_CONFIG").
	configFrom string
	Profile    string
	Output     string
	Quiet      bool
	Verbose    bool
	// Org is the hub organisation commands work in (--org, BERTH_ORG).
	Org string

	log *slog.Logger
}

// Main runs berth with args and returns the process exit code.
func Main(ctx context.Context, args []string, g *Globals) int {
	root := NewRootCommand(g)
	root.SetArgs(args)
	root.SetIn(g.Stdin)
	root.SetOut(g.Stdout)
	root.SetErr(g.Stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	code := ExitCode(err)
	if !isSilent(err) {
		fmt.Fprintf(g.Stderr, "berth: %v\n", err)
		if h := hint(err); h != "" {
			fmt.Fprintf(g.Stderr, "hint: %s\n", h)
		}
	}
	return code
}

// OSGlobals returns Globals wired to the process.
func OSGlobals() *Globals {
	return &Globals{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Env: os.Getenv,
		StderrTerminal: term.IsTerminal(int(os.Stderr.Fd())),
		StdinTerminal:  term.IsTerminal(int(os.Stdin.Fd())),
	}
}

// NewRootCommand builds the command tree.
func NewRootCommand(g *Globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "berth",
		Short: "Versioned release artifacts across regions, least-privilege AWS policies, account onboarding",
		Long: `berth stages versioned release artifacts with their metadata to a store in
every configured region at once, and downloads a given or the latest version
from the nearest healthy region with checksum verification. Releases can be
signed (berth keygen, stage --sign-key) and downloads limited to versions a
trusted key signed (download --trusted-key).

Stores are S3 buckets (AWS or any S3-compatible service such as MinIO) or local
directories. Without a configuration file berth uses one local store under
$XDG_DATA_HOME/berth, so every command works out of the box.

It also renders, lints and simulates the IAM policies and CloudFormation
templates its users need (berth policy, berth template), deploys the bootstrap
of a dedicated sub-account and the regional data plane through it (berth
bootstrap, berth dataplane), and checks credentials and permissions before
anything is saved (berth check). berth gc removes what failed stages leave,
berth cache saves and restores CI caches, and berth accounts validate checks an
account catalog.

berth server runs the hub, a shared control plane: users and API tokens, data
planes, projects with members, and short-lived credentials narrowed to one
project. After berth login, artifact commands with no configured regions get
their regions and credentials from the hub, in the organisation --org (env
BERTH_ORG) names when you belong to several (berth org list).

Exit codes:
  0    success
  1    the answer is no (missing version, no copy signed by a trusted key,
       verify found problems)
  2    usage or invalid input; nothing was attempted
  3    conflict; nothing was changed (version staged with other bytes)
  4    access refused (missing or expired credentials, AccessDenied)
  5    unavailable (no region reachable, service errors after retries)
  130  interrupted`,
		Example: `  berth stage myapp 1.4.0 ./dist/myapp.tar.gz --metadata commit=$GIT_SHA
  berth download myapp latest -o myapp.tar.gz
  berth versions myapp --output json`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return g.setup()
		},
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usageErr(err) })
	pf := root.PersistentFlags()
	pf.StringVar(&g.ConfigPath, "config", "", "config file (env BERTH_CONFIG; default $XDG_CONFIG_HOME/berth/config.yaml, or ./berth.yaml in a directory listed under trusted_dirs there)")
	pf.StringVar(&g.Profile, "profile", "", "AWS profile, SSO profiles included (env AWS_PROFILE)")
	pf.StringVar(&g.Output, "output", "", "output format: text or json (env BERTH_OUTPUT)")
	pf.BoolVarP(&g.Quiet, "quiet", "q", false, "no progress and no informational lines on stderr")
	pf.BoolVarP(&g.Verbose, "verbose", "v", false, "debug logs on stderr")
	pf.StringVar(&g.Org, "org", "", "the hub organisation to work in (env BERTH_ORG; default: your first; berth org list shows yours)")
	root.RegisterFlagCompletionFunc("org", g.completeOrg)
	root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))

	root.AddCommand(newInitCommand(g), newStageCommand(g), newDownloadCommand(g), newVersionsCommand(g),
		newInfoCommand(g), newExistsCommand(g), newVerifyCommand(g),
		newKeygenCommand(g), newPolicyCommand(g), newTemplateCommand(g), newDataplaneCommand(g))
	root.AddCommand(newGCCommand(g))
	root.AddCommand(newBootstrapCommand(g), newCheckCommand(g))
	root.AddCommand(newServerCommand(g), newLoginCommand(g), newLogoutCommand(g))
	root.AddCommand(newCacheCommand(g), newAccountsCommand(g))
	root.AddCommand(newSSOCommand(g), newAccessCommand(g), newOrgCommand(g), newProjectCommand(g))
	return root
}

func (g *Globals) setup() error {
	if g.Output == "" {
		g.Output = g.Env("BERTH_OUTPUT")
	}
	switch g.Output {
	case "":
		g.Output = "text"
	case "text", "json":
	default:
		return usageErr(fmt.Errorf("--output %q: use text or json", g.Output))
	}
	switch {
	case g.ConfigPath != "":
		g.configFrom = "--config"
	case g.Env("BERTH_CONFIG") != "":
		g.ConfigPath, g.configFrom = g.Env("BERTH_CONFIG"), "BERTH_CONFIG"
	}
	level := slog.LevelWarn
	switch {
	case g.Verbose:
		level = slog.LevelDebug
	case g.Quiet:
		level = slog.LevelError
	}
	g.log = slog.New(slog.NewTextHandler(g.Stderr, &slog.HandlerOptions{Level: level}))
	return nil
}

func (g *Globals) json() bool { return g.Output == "json" }

// info prints a human-oriented line on stderr unless quiet.
func (g *Globals) info(format string, args ...any) {
	if !g.Quiet {
		fmt.Fprintf(g.Stderr, format+"\n", args...)
	}
}

func (g *Globals) printJSON(v any) error {
	enc := json.NewEncoder(g.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
