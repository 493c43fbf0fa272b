package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/config"
)

func args(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if len(a) != n {
			return usageErr(fmt.Errorf("%s takes %s (%d arguments), got %d", cmd.Name(), names, n, len(a)))
		}
		return nil
	}
}

func rangeArgs(lo, hi int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if len(a) < lo || len(a) > hi {
			return usageErr(fmt.Errorf("%s takes %s, got %d arguments", cmd.Name(), names, len(a)))
		}
		return nil
	}
}

func newInitCommand(g *Globals) *cobra.Command {
	var stores []string
	var prefix, pointers string
	var force bool
	cmd := &cobra.Command{
		Use:   "init [--store NAME=URL]... [--prefix PREFIX] [--pointers store|ssm:/PARAM/PREFIX] [--force]",
		Short: "Write the configuration file: regions, their stores, a key prefix, the pointer store",
		Long: `init writes berth's configuration file (the --config path, else
$XDG_CONFIG_HOME/berth/config.yaml). Each --store names a region and its store:

  file:///absolute/dir                                  a local directory
  s3://BUCKET?region=R                                  an AWS S3 bucket
  s3://BUCKET?region=R&endpoint=URL&path_style=true     any S3-compatible service
  s3://?region=R&bucket_parameter=/ssm/param/name       bucket name read from SSM

Regions are tried in the order given when downloading. Without --store on a
terminal, init asks; without a terminal it fails.`,
		Example: `  berth init --store eu-west-1='s3://releases-eu?region=eu-west-1' \
             --store us-east-1='s3://releases-us?region=us-east-1' --prefix releases
  berth init --store local=file:///srv/berth --config ./berth.yaml`,
		Args: args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(stores) == 0 {
				if !g.StdinTerminal {
					return usageErr(errors.New("give at least one --store NAME=URL (no terminal to ask on)"))
				}
				var err error
				stores, prefix, err = promptInit(g)
				if err != nil {
					return err
				}
			}
			c := &config.Config{Prefix: strings.Trim(prefix, "/"), Pointers: pointers}
			for _, s := range stores {
				r, err := config.ParseRegionFlag(s)
				if err != nil {
					return err
				}
				c.Regions = append(c.Regions, r)
			}
			path := g.ConfigPath
			if path == "" {
				path = config.DefaultPath(g.Env)
			}
			if err := config.Write(path, c, force); err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(map[string]any{"config": path, "regions": c.Regions, "prefix": c.Prefix, "pointers": c.Pointers})
			}
			fmt.Fprintf(g.Stdout, "wrote %s with %d region(s)\n", path, len(c.Regions))
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&stores, "store", nil, "region store as NAME=URL, repeatable, in download order")
	cmd.Flags().StringVar(&prefix, "prefix", "", "key prefix in every store")
	cmd.Flags().StringVar(&pointers, "pointers", "store", "where latest pointers live: store, or ssm:/PARAM/PREFIX")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing config file")
	return cmd
}

func promptInit(g *Globals) ([]string, string, error) {
	in := bufio.NewReader(g.Stdin)
	ask := func(q string) (string, error) {
		fmt.Fprint(g.Stderr, q)
		s, err := in.ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && s != "") {
			return "", usageErr(fmt.Errorf("read answer: %w", err))
		}
		return strings.TrimSpace(s), nil
	}
	var stores []string
	for {
		s, err := ask("region store as NAME=URL (empty line to finish): ")
		if err != nil {
			return nil, "", err
		}
		if s == "" {
			break
		}
		if _, err := config.ParseRegionFlag(s); err != nil {
			fmt.Fprintf(g.Stderr, "  %v\n", err)
			continue
		}
		stores = append(stores, s)
	}
	if len(stores) == 0 {
		return nil, "", usageErr(errors.New("no store given"))
	}
	prefix, err := ask("key prefix (empty for none): ")
	return stores, prefix, err
}

func newStageCommand(g *Globals) *cobra.Command {
	var f storeFlags
	var metadata []string
	var opts artifact.StageOptions
	var signKey string
	cmd := &cobra.Command{
		Use:   "stage PROJECT VERSION FILE",
		Short: "Upload a file as an immutable version to every region at once",
		Long: `stage reads FILE once, hashing it with SHA-256, and writes it to every configured
region in parallel. Each region is committed by a manifest (size, SHA-256,
metadata, file name, time, who staged it) written last and only if none exists,
so a version is immutable and two concurrent stagers cannot both win.

Running a stage again after it failed half-way finishes the missing regions,
and puts back the bytes of a region whose manifest lost them ("refilled").
Staging the same version with other bytes fails with a conflict (exit 3).
"latest" is the highest release and only moves forward in version order;
--force-latest moves it to this version regardless, prereleases included.
"latest-prerelease" is the highest version, prereleases included; a
prerelease moves only it.

PROJECT: 1-64 lower-case letters, digits, '.', '_' and '-'.
VERSION: a semantic version (https://semver.org) such as 1.4.0 or 2.0.0-rc.1;
         no leading "v".
--metadata KEY=VALUE: keys of letters, digits and "._-:/" (the "berth:" prefix
         is reserved), values up to 1024 bytes, 64 keys at most.
--sign-key FILE: sign the manifest with a secret key from "berth keygen"
         (or minisign); a password-protected key is unlocked with
         BERTH_SIGN_KEY_PASSWORD or a prompt, before anything is uploaded.`,
		Example: `  berth stage myapp 1.4.0 dist/myapp.tar.gz --metadata commit=$GIT_SHA --metadata branch=main
  berth stage myapp 1.4.1 build.zip --filename myapp-1.4.1.zip
  berth stage myapp 1.4.1 build.zip --dry-run`,
		Args: args(3, "PROJECT VERSION FILE"),
		RunE: func(cmd *cobra.Command, a []string) error {
			md, err := artifact.ParseMetadata(metadata)
			if err != nil {
				return err
			}
			opts.Metadata = md
			if signKey != "" {
				// Before the client: decrypting the key needs memory the
				// client's transfer limit does not leave.
				if opts.SignKey, err = g.loadSignKey(signKey); err != nil {
					return err
				}
			}
			c, hub, err := g.clientAndHub(cmd.Context(), cmd, &f)
			if err != nil {
				return err
			}
			p := g.attachProgress(c)
			res, err := c.Stage(cmd.Context(), a[0], a[1], a[2], opts)
			p.wait()
			if res == nil {
				return err
			}
			if !res.DryRun {
				g.tellHub(cmd.Context(), hub, res.Project, res.Version)
			}
			if g.json() {
				return g.jsonResult(res, err)
			}
			verb := "staged"
			if err != nil {
				verb = "could not stage"
			}
			if res.DryRun {
				verb = "dry run: would stage"
			}
			signed := ""
			if res.SignedBy != "" {
				signed = ", signed by key " + res.SignedBy
			}
			fmt.Fprintf(g.Stdout, "%s %s %s (%s, sha256 %s%s)\n", verb, res.Project, res.Version, humanSize(res.Size), orDash(res.SHA256), signed)
			w := tabwriter.NewWriter(g.Stdout, 0, 0, 2, ' ', 0)
			for _, r := range res.Regions {
				note := g.brief(r.Err())
				if r.LatestMoved {
					note = fmt.Sprintf("latest %s -> %s", orDash(r.LatestBefore), res.Version)
				} else if r.Error == "" && r.LatestBefore != "" && !res.DryRun {
					note = "latest stays " + r.LatestBefore
				}
				if r.PrereleaseMoved && !r.LatestMoved {
					note += fmt.Sprintf("; latest-prerelease %s -> %s", orDash(r.PrereleaseBefore), res.Version)
					note = strings.TrimPrefix(note, "; ")
				}
				fmt.Fprintf(w, "  %s\t%s\t%s\n", printable(r.Region), statusText(r.Status), printable(note))
			}
			w.Flush()
			return err
		},
	}
	f.register(cmd)
	cmd.Flags().StringArrayVar(&metadata, "metadata", nil, "metadata as KEY=VALUE, repeatable")
	cmd.Flags().StringVar(&opts.Filename, "filename", "", "file name recorded with the version (default: FILE's base name)")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "check access and existence in every region; write nothing")
	cmd.Flags().BoolVar(&opts.ForceLatest, "force-latest", false, "move the latest pointer to this version even if it is lower or a prerelease")
	cmd.Flags().StringVar(&signKey, "sign-key", "", "sign the manifest with this secret key (berth keygen; env "+passwordEnv+" unlocks it)")
	return explainErrors(g, cmd)
}

func newDownloadCommand(g *Globals) *cobra.Command {
	var f storeFlags
	var out, dir, region string
	var force, allowDotfile bool
	cmd := &cobra.Command{
		Use:   "download PROJECT [VERSION|latest|latest-prerelease] (-o PATH | -o - | --filename DIR)",
		Short: "Download a version from the first healthy region, verified by SHA-256",
		Long: `download tries the regions in configured order (--region first), streams into
a temporary file beside the target, checks size and SHA-256 against the
manifest and renames the file into place only on a match. Any failure,
corruption included, moves on to the next region and is reported.

-o PATH replaces PATH if it is a regular file; berth never replaces a
directory, a symbolic link or a device. -o - writes the bytes to standard
output, and nothing else: they pass through a temporary file under $TMPDIR
and are written only after they are verified.

--filename DIR writes the file name recorded at stage time into DIR. It
replaces an existing file there only with --force, and writes a name that
starts with '.' (such as .bashrc) only with --allow-dotfile: the name comes
from whoever staged the version.

With trusted keys (--trusted-key, repeatable, or trusted_keys in the config
file; the flags replace the file's list), only versions signed by one of them
are accepted: an unsigned copy, or one whose signature does not match its
manifest, is refused like a corrupted one and the next region is tried. A key
is given as a minisign public key (RWQ...) or a .pub file.

Exit 1 when no region holds an intact copy (missing, damaged in every region
that holds it, or not signed by a trusted key); exit 4 or 5 when a region that
might hold one refused access or could not be reached. Each region that failed
is one line; -v adds the service's request ids.`,
		Example: `  berth download myapp -o myapp.tar.gz
  berth download myapp 1.4.0 --filename ./dist
  berth download myapp -o - | tar -xz
  berth download myapp latest -o app.tgz --region us-east-1 --output json
  berth download myapp 1.4.0 -o app.tgz --trusted-key release.key.pub`,
		Args: rangeArgs(1, 2, "PROJECT [VERSION]"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if (out == "") == (dir == "") {
				return usageErr(errors.New("give exactly one of -o PATH or --filename DIR (-o - writes to stdout)"))
			}
			opts := artifact.DownloadOptions{Path: out, Dir: dir, PreferRegion: region, Force: force, AllowDotfile: allowDotfile}
			if out == "-" {
				if g.json() {
					return usageErr(errors.New("-o - writes the artifact to stdout, which leaves no room for --output json"))
				}
				opts.Path, opts.Writer = "", g.Stdout
			}
			version := artifact.Latest
			if len(a) == 2 {
				version = a[1]
			}
			c, err := g.client(cmd.Context(), cmd, &f)
			if err != nil {
				return err
			}
			p := g.attachProgress(c)
			res, err := c.Download(cmd.Context(), a[0], version, opts)
			p.wait()
			if err != nil {
				return err
			}
			for _, fr := range res.Failures {
				word := "failed"
				if fr.Status == artifact.StatusRefused {
					word = "refused access"
				}
				g.info("berth: region %s %s: %s", printable(fr.Region), word, printable(g.brief(fr.Err())))
			}
			if g.json() {
				return g.printJSON(res)
			}
			signed := ""
			if res.SignedBy != "" {
				signed = ", signed by trusted key " + res.SignedBy
			}
			if opts.Writer != nil {
				g.info("downloaded %s %s from %s to stdout (%s, sha256 verified%s)", res.Project, res.Version, printable(res.Region), humanSize(res.Size), printable(signed))
				return nil
			}
			fmt.Fprintf(g.Stdout, "downloaded %s %s from %s to %s (%s, sha256 verified%s)\n", res.Project, res.Version, printable(res.Region), printable(res.Path), humanSize(res.Size), printable(signed))
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVarP(&out, "output-file", "o", "", "destination file, or - for standard output")
	cmd.Flags().StringVar(&dir, "filename", "", "download into DIR under the file name recorded with the version")
	cmd.Flags().StringVar(&region, "region", "", "region to try first")
	f.registerTrustedKeys(cmd, "accept only versions signed by this key (minisign public key or .pub file), repeatable; replaces trusted_keys from the config")
	cmd.Flags().BoolVar(&force, "force", false, "with --filename: replace an existing file of the recorded name")
	cmd.Flags().BoolVar(&allowDotfile, "allow-dotfile", false, "with --filename: write a recorded name that starts with '.'")
	return explainErrors(g, cmd)
}

func newVersionsCommand(g *Globals) *cobra.Command {
	var f storeFlags
	var region string
	cmd := &cobra.Command{
		Use:     "versions PROJECT [--region NAME]",
		Short:   "List the versions of a project, oldest first",
		Example: "  berth versions myapp\n  berth versions myapp --output json | jq -r '.[-1].version'",
		Args:    args(1, "PROJECT"),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := g.client(cmd.Context(), cmd, &f)
			if err != nil {
				return err
			}
			if c, err = only(c, region); err != nil {
				return err
			}
			vs, err := c.Versions(cmd.Context(), a[0])
			if vs == nil && err != nil {
				return err
			}
			if err != nil {
				g.info("berth: warning: %s", printable(g.brief(err)))
			}
			if g.json() {
				return g.printJSON(vs)
			}
			w := tabwriter.NewWriter(g.Stdout, 0, 0, 2, ' ', 0)
			for _, v := range vs {
				fmt.Fprintf(w, "%s\t%s\t%s\n", printable(v.Version), v.Created.Format(time.RFC3339), printable(strings.Join(v.Regions, ",")))
			}
			return w.Flush()
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&region, "region", "", "ask only this region")
	return explainErrors(g, cmd)
}

func newInfoCommand(g *Globals) *cobra.Command {
	var f storeFlags
	var region string
	cmd := &cobra.Command{
		Use:     "info PROJECT [VERSION] [--region NAME]",
		Short:   "Show a version's manifest, its signature and which regions hold it",
		Example: "  berth info myapp\n  berth info myapp 1.4.0 --output json\n  berth info myapp 1.4.0 --trusted-key release.key.pub",
		Args:    rangeArgs(1, 2, "PROJECT [VERSION]"),
		RunE: func(cmd *cobra.Command, a []string) error {
			version := artifact.Latest
			if len(a) == 2 {
				version = a[1]
			}
			c, err := g.client(cmd.Context(), cmd, &f)
			if err != nil {
				return err
			}
			if c, err = only(c, region); err != nil {
				return err
			}
			d, err := c.Info(cmd.Context(), a[0], version)
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(infoJSON(d))
			}
			w := tabwriter.NewWriter(g.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintf(w, "project\t%s\nversion\t%s\nlatest\t%s\nlatest prerelease\t%s\nsize\t%s (%d bytes)\nsha256\t%s\nfilename\t%s\nmode\t%s\ncreated\t%s\nstaged by\t%s\n",
				printable(d.Project), printable(d.Version), printable(orDash(d.Latest)), printable(orDash(d.LatestPrerelease)), humanSize(d.Size), d.Size, printable(d.SHA256),
				printable(d.Filename), printable(orDash(d.Mode)), d.Created.Format(time.RFC3339), printable(d.StagedBy))
			for _, k := range sortedKeys(d.Metadata) {
				fmt.Fprintf(w, "metadata %s\t%s\n", printable(k), printable(d.Metadata[k]))
			}
			fmt.Fprintf(w, "signature\t%s\n", printable(signatureText(d.SignatureStatus)))
			// Per-region signature states only when they differ: the
			// signature line above covers the usual case.
			sigDiffer := false
			for _, r := range d.Regions {
				sigDiffer = sigDiffer || r.Signature != "" && r.Signature != d.SignatureStatus.Status
			}
			for _, r := range d.Regions {
				state := "present"
				if !r.Present {
					state = "missing"
				}
				if r.Error != "" {
					state = "error: " + g.brief(r.Err())
				}
				if r.Kind == artifact.KindRefused {
					state = "access refused: " + g.brief(r.Err())
				}
				if sigDiffer && r.Signature != "" {
					state += ", signature " + r.Signature
				}
				fmt.Fprintf(w, "region %s\t%s\n", printable(r.Name), printable(state))
			}
			return w.Flush()
		},
	}
	f.register(cmd)
	f.registerTrustedKeys(cmd, "check the signature against this key (minisign public key or .pub file), repeatable; replaces trusted_keys from the config")
	cmd.Flags().StringVar(&region, "region", "", "ask only this region")
	return explainErrors(g, cmd)
}

// only narrows c to the region called name, when one is given.
func only(c *artifact.Client, name string) (*artifact.Client, error) {
	if name == "" {
		return c, nil
	}
	return c.Only(name)
}

func (f *storeFlags) registerTrustedKeys(cmd *cobra.Command, usage string) {
	cmd.Flags().StringArrayVar(&f.trustedKeys, "trusted-key", nil, usage)
}

func signatureText(s artifact.SignatureInfo) string {
	switch s.Status {
	case artifact.SignatureVerified:
		return "verified, signed by trusted key " + s.KeyID
	case artifact.SignatureUnchecked:
		return "signed by key " + s.KeyID + " (not checked: no trusted key given)"
	case artifact.SignatureUnsigned:
		return "unsigned"
	}
	return s.Status + ": " + s.Error
}

func infoJSON(d *artifact.VersionDetails) map[string]any {
	return map[string]any{
		"project": d.Project, "version": d.Version, "size": d.Size, "sha256": d.SHA256,
		"metadata": d.Metadata, "filename": d.Filename, "mode": d.Mode, "created": d.Created, "staged_by": d.StagedBy,
		"latest": d.Latest, "latest_prerelease": d.LatestPrerelease, "regions": d.Regions, "signature": d.SignatureStatus,
	}
}

func newExistsCommand(g *Globals) *cobra.Command {
	var f storeFlags
	cmd := &cobra.Command{
		Use:   "exists PROJECT VERSION",
		Short: "Exit 0 if a version exists in any region, 1 if in none",
		Long: `exists answers with its exit code: 0 when at least one region holds the
version, 1 when every region answered and none does, 5 when it is in none of
the regions that answered but some did not.`,
		Example: "  berth exists myapp 1.4.0 || berth stage myapp 1.4.0 dist/myapp.tar.gz",
		Args:    args(2, "PROJECT VERSION"),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := g.client(cmd.Context(), cmd, &f)
			if err != nil {
				return err
			}
			ok, err := c.Exists(cmd.Context(), a[0], a[1])
			if err != nil {
				return err
			}
			if g.json() {
				if err := g.printJSON(map[string]any{"project": a[0], "version": a[1], "exists": ok}); err != nil {
					return err
				}
			} else if !g.Quiet {
				word := "exists"
				if !ok {
					word = "does not exist"
				}
				fmt.Fprintf(g.Stdout, "%s %s %s\n", a[0], a[1], word)
			}
			if !ok {
				return errNo
			}
			return nil
		},
	}
	f.register(cmd)
	return explainErrors(g, cmd)
}

func newVerifyCommand(g *Globals) *cobra.Command {
	var f storeFlags
	var repair bool
	cmd := &cobra.Command{
		Use:   "verify PROJECT VERSION [--repair]",
		Short: "Check that every region holds an intact, identical copy; optionally repair",
		Long: `verify reads every region's copy and checks its size and SHA-256 against the
manifests, which must agree. With --repair, a region whose copy is missing or
corrupted gets one from a healthy region. Exit 1 when problems remain.

With trusted keys (--trusted-key, or trusted_keys in the config), an intact
copy whose manifest is not signed by one of them is "untrusted": reported,
never used to repair another region.`,
		Example: "  berth verify myapp 1.4.0\n  berth verify myapp 1.4.0 --repair --output json\n  berth verify myapp 1.4.0 --trusted-key release.key.pub",
		Args:    args(2, "PROJECT VERSION"),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, hub, err := g.clientAndHub(cmd.Context(), cmd, &f)
			if err != nil {
				return err
			}
			p := g.attachProgress(c)
			res, err := c.Verify(cmd.Context(), a[0], a[1], repair)
			p.wait()
			if res == nil {
				return err
			}
			if slices.ContainsFunc(res.Regions, func(r artifact.VerifyRegion) bool { return r.Repaired }) {
				g.tellHub(cmd.Context(), hub, res.Project, res.Version) // the version is in more regions now
			}
			if g.json() {
				return g.jsonResult(res, err)
			}
			fmt.Fprintf(g.Stdout, "%s %s (%s, sha256 %s)\n", res.Project, res.Version, humanSize(res.Size), orDash(res.SHA256))
			w := tabwriter.NewWriter(g.Stdout, 0, 0, 2, ' ', 0)
			for _, r := range res.Regions {
				note := g.brief(r.Err())
				if r.Repaired {
					note = "repaired"
				}
				if len(r.Orphans) > 0 {
					orphans := fmt.Sprintf("%d orphaned data object(s) no manifest points at (lost races, failed stages), safe to delete", len(r.Orphans))
					note = strings.Join(slices.DeleteFunc([]string{note, orphans}, func(s string) bool { return s == "" }), "; ")
				}
				if len(r.TempFiles) > 0 {
					temps := fmt.Sprintf("%d temporary file(s) of the project left by interrupted writes, safe to delete: %s", len(r.TempFiles), strings.Join(r.TempFiles, ", "))
					note = strings.Join(slices.DeleteFunc([]string{note, temps}, func(s string) bool { return s == "" }), "; ")
				}
				fmt.Fprintf(w, "  %s\t%s\t%s\n", printable(r.Region), statusText(r.Status), printable(note))
			}
			w.Flush()
			return err
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&repair, "repair", false, "copy a healthy region's copy where one is missing or corrupted")
	f.registerTrustedKeys(cmd, "count a copy as intact only when signed by this key (minisign public key or .pub file), repeatable; replaces trusted_keys from the config")
	return explainErrors(g, cmd)
}
