package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/hub/hubclient"
	"github.com/berth-dev/berth/pointer"
	"github.com/berth-dev/berth/store/s3store"
)

// hubLogins is the file of hubs the CLI is logged in to. It holds API
// tokens, so it is written with mode 0600 and kept apart from the config,
// which people share and commit.
type hubLogins struct {
	Default string     `yaml:"default,omitempty"`
	Hubs    []hubLogin `yaml:"hubs"`
}

type hubLogin struct {
	URL   string `yaml:"url"`
	Token string `yaml:"token"`
	Email string `yaml:"email,omitempty"`
}

func hubsPath(env config.Env) string {
	return filepath.Join(filepath.Dir(config.DefaultPath(env)), "hubs.yaml")
}

func readHubLogins(path string) (*hubLogins, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &hubLogins{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	h := &hubLogins{}
	if err := yaml.Unmarshal(data, h); err != nil {
		return nil, usageErr(fmt.Errorf("read %s: not a berth hubs file; remove it and log in again", path))
	}
	return h, nil
}

func writeHubLogins(path string, h *hubLogins) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	data, err := yaml.Marshal(h)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".hubs-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file 0600, which is what tokens need.
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp.Name(), path)
}

// normalizeHubURL checks a hub URL and drops a trailing slash.
func normalizeHubURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return "", usageErr(fmt.Errorf("--url %q: want the hub's address, such as https://berth.example.com", truncateValue(s)))
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

func truncateValue(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

func newLoginCommand(g *Globals) *cobra.Command {
	var hubURL, token string
	cmd := &cobra.Command{
		Use:   "login --url URL [--token TOKEN|-]",
		Short: "Log in to a berth hub: approve in a browser, or give an API token",
		Long: `login saves an API token for a hub in $XDG_CONFIG_HOME/berth/hubs.yaml
(mode 0600). The hub you logged in to last is the default.

Without a token, login asks the hub for a login request, prints its link and
code and opens the browser (the BROWSER command, else xdg-open or open). Sign
in, type the code on the page and approve; login then receives a new token
named "berth login on HOST". The page asks for the code, rather than showing
it, so a login link someone else started cannot be approved by a click.
Denied or expired requests exit 4.

For CI, give the token with --token, BERTH_HUB_TOKEN, or on stdin with --token -
(which keeps it out of your shell history and the process list). Create one in
the hub (POST /api/v1/tokens, or the first-start setup).`,
		Example: `  berth login --url https://berth.example.com
  berth login --url https://berth.example.com --token - < token.txt
  BERTH_HUB_TOKEN=berth_... berth login --url https://berth.example.com`,
		Args: args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			u, err := normalizeHubURL(hubURL)
			if err != nil {
				return err
			}
			if token == "" {
				token = g.Env("BERTH_HUB_TOKEN")
			}
			if token == "-" {
				line, err := bufio.NewReader(g.Stdin).ReadString('\n')
				if err != nil && line == "" {
					return usageErr(errors.New("--token -: no token on stdin"))
				}
				token = strings.TrimSpace(line)
			}
			if token == "" {
				if token, err = g.browserLogin(cmd.Context(), u); err != nil {
					return err
				}
			}
			if !strings.HasPrefix(token, "berth_") {
				return usageErr(errors.New("give an API token starting with berth_ (--token, --token - or BERTH_HUB_TOKEN), or no token to approve the login in a browser"))
			}
			return g.login(cmd.Context(), u, token)
		},
	}
	cmd.Flags().StringVar(&hubURL, "url", "", "the hub's address, such as https://berth.example.com")
	cmd.Flags().StringVar(&token, "token", "", "API token (berth_...), or - to read it from stdin")
	return cmd
}

// browserLogin asks the hub for a login request, shows where to approve
// it, and waits for the token.
func (g *Globals) browserLogin(ctx context.Context, hubURL string) (string, error) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "an unnamed host"
	}
	hc := &hubclient.Client{URL: hubURL}
	req, err := hc.StartLogin(ctx, host, fmt.Sprintf("berth (%s/%s)", runtime.GOOS, runtime.GOARCH))
	if err != nil {
		return "", err
	}
	// On stderr: stdout stays for the result (--output json).
	fmt.Fprintf(g.Stderr, "To log in, open this page and type the code %s:\n  %s\n", req.UserCode, req.ApproveURL)
	if err := g.openBrowser(req.ApproveURL); err != nil {
		g.log.Debug("open browser", "err", err)
	}
	g.info("berth: waiting for approval (the request expires at %s)", req.Expires.Local().Format("15:04:05"))
	login, err := hc.WaitLogin(ctx, req)
	if err != nil {
		return "", err
	}
	return login.Token, nil
}

// openBrowser starts the BROWSER command, else the desktop's opener, on
// url, without waiting for it; failing is fine, the link is printed.
func (g *Globals) openBrowser(url string) error {
	name := g.Env("BROWSER")
	if name == "" {
		name = map[string]string{"darwin": "open", "windows": "explorer"}[runtime.GOOS]
	}
	if name == "" {
		name = "xdg-open"
	}
	cmd := exec.Command(name, url)
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait() // reap it
	return nil
}

func (g *Globals) login(ctx context.Context, hubURL, token string) error {
	me, err := (&hubclient.Client{URL: hubURL, Token: token}).Me(ctx)
	if err != nil {
		return err
	}
	path := hubsPath(g.Env)
	h, err := readHubLogins(path)
	if err != nil {
		return err
	}
	entry := hubLogin{URL: hubURL, Token: token, Email: me.Email}
	replaced := false
	for i := range h.Hubs {
		if h.Hubs[i].URL == hubURL {
			h.Hubs[i], replaced = entry, true
		}
	}
	if !replaced {
		h.Hubs = append(h.Hubs, entry)
	}
	h.Default = hubURL
	if err := writeHubLogins(path, h); err != nil {
		return err
	}
	if g.json() {
		return g.printJSON(map[string]any{"url": hubURL, "email": me.Email, "default": true})
	}
	fmt.Fprintf(g.Stdout, "logged in to %s as %s (the default hub; saved in %s)\n", hubURL, me.Email, path)
	return nil
}

func newLogoutCommand(g *Globals) *cobra.Command {
	var hubURL string
	cmd := &cobra.Command{
		Use:   "logout [--url URL]",
		Short: "Forget the token of a hub (the default hub without --url)",
		Long: `logout removes a hub's token from $XDG_CONFIG_HOME/berth/hubs.yaml. The token
stays valid at the hub until it expires; revoke it there to end it now.`,
		Args: args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := hubsPath(g.Env)
			h, err := readHubLogins(path)
			if err != nil {
				return err
			}
			target := h.Default
			if hubURL != "" {
				if target, err = normalizeHubURL(hubURL); err != nil {
					return err
				}
			}
			kept := h.Hubs[:0]
			found := false
			for _, e := range h.Hubs {
				if e.URL == target {
					found = true
					continue
				}
				kept = append(kept, e)
			}
			if !found {
				return fmt.Errorf("not logged in to %s: %w", orDash(target), errNo)
			}
			h.Hubs = kept
			if h.Default == target {
				h.Default = ""
				if len(kept) > 0 {
					h.Default = kept[len(kept)-1].URL
				}
			}
			if err := writeHubLogins(path, h); err != nil {
				return err
			}
			g.info("berth: logged out of %s", target)
			return nil
		},
	}
	cmd.Flags().StringVar(&hubURL, "url", "", "the hub to log out of (default: the default hub)")
	return cmd
}

// defaultHub returns the default hub login, or nil when there is none.
func (g *Globals) defaultHub() (*hubLogin, error) {
	h, err := readHubLogins(hubsPath(g.Env))
	if err != nil {
		return nil, err
	}
	for _, e := range h.Hubs {
		if e.URL == h.Default {
			return &e, nil
		}
	}
	return nil, nil
}

// hubRole is the access an artifact command needs: staging and repairing
// write, everything else reads.
func hubRole(cmd *cobra.Command) string {
	if cmd.Name() == "stage" {
		return "write"
	}
	if repair, _ := cmd.Flags().GetBool("repair"); repair {
		return "write"
	}
	return "read"
}

// hubClient builds the artifact client from credentials the hub vends for
// the command's project (its first argument). The S3 clients ask the hub
// again before the credentials expire, so long transfers outlive them.
func (g *Globals) hubClient(ctx context.Context, cmd *cobra.Command, f *storeFlags, login *hubLogin) (*artifact.Client, *hubclient.Client, error) {
	project := cmd.Flags().Arg(0)
	if err := artifact.ValidateProject(project); err != nil {
		return nil, nil, err
	}
	opts, err := g.s3Options(f)
	if err != nil {
		return nil, nil, err
	}
	hc, err := g.hubAPI(login)
	if err != nil {
		return nil, nil, err
	}
	grant, err := hc.Credentials(ctx, project, hubRole(cmd))
	if err != nil {
		return nil, nil, err
	}
	g.info("berth: using hub %s as %s: project %s, %s access, %d region(s)", login.URL, login.Email, project, grant.Role, len(grant.Regions))
	if opts.Concurrency == 0 && len(grant.Regions) > 1 {
		opts.Concurrency = multiRegionConcurrency
	}
	g.limitMemory(opts, len(grant.Regions))
	c := &artifact.Client{Identity: login.Email, Logger: g.log,
		Journal: artifact.FileJournal{Path: filepath.Join(config.DefaultStateDir(g.Env), "uploads.json")}}
	if c.TrustedKeys, err = trustedKeys(f.trustedKeys, nil); err != nil {
		return nil, nil, err
	}
	for _, r := range grant.Regions {
		creds := aws.NewCredentialsCache(hc.Provider(grant, r.Name))
		client := s3.New(s3.Options{Region: r.Name, Credentials: creds, UsePathStyle: r.Endpoint != "",
			DisableLogOutputChecksumValidationSkipped: true}, func(o *s3.Options) {
			if r.Endpoint != "" {
				o.BaseEndpoint = aws.String(r.Endpoint)
			}
		})
		st := s3store.New(client, r.Bucket, grant.StorePrefix, opts)
		c.Regions = append(c.Regions, artifact.Region{Name: r.Name, Store: st, Pointer: pointer.InStore{Store: st}})
	}
	return c, hc, nil
}
