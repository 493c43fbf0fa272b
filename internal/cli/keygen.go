package cli

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"aead.dev/minisign"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/config"
)

// passwordEnv unlocks (and, for keygen, locks) a password-protected secret
// key without a terminal, as CI needs.
const passwordEnv = "BERTH_SIGN_KEY_PASSWORD"

// maxKeyFile bounds what berth reads as a key file: minisign keys are a
// few hundred bytes.
const maxKeyFile = 16 << 10

func newKeygenCommand(g *Globals) *cobra.Command {
	var out string
	var noPassword bool
	cmd := &cobra.Command{
		Use:   "keygen -o PATH [--no-password]",
		Short: "Create a key pair for signing releases (minisign format)",
		Long: `keygen writes a new Ed25519 key pair in minisign's format: the secret key to
PATH (mode 0600) and the public key to PATH.pub. It never overwrites a file.

The secret key is encrypted with a password, as minisign does (scrypt: using
the key takes seconds and about 1 GiB of memory, which is what makes guessing
the password expensive). The password comes from ` + passwordEnv + `,
else it is asked for on the terminal. --no-password writes the key
unencrypted, for CI systems that keep it in their own secret store; guard
that file like any credential.

Sign with "berth stage ... --sign-key PATH" (the same variable or prompt
unlocks the key). Hand PATH.pub, or the key line in it, to those who
download: "berth download ... --trusted-key PATH.pub", or trusted_keys in
their config file. The minisign tool reads both files.`,
		Example: `  berth keygen -o ~/.config/berth/release.key
  ` + passwordEnv + `=... berth keygen -o release.key
  berth keygen -o ci.key --no-password`,
		Args: args(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageErr(errors.New("give the secret key's path with -o PATH (the public key goes to PATH.pub)"))
			}
			for _, p := range []string{out, out + ".pub"} {
				if _, err := os.Lstat(p); err == nil {
					return usageErr(fmt.Errorf("%s exists; keygen never replaces a key: move it away or choose another -o", p))
				}
			}
			password := ""
			if !noPassword {
				var err error
				if password, err = g.password("password for the new secret key: ", true); err != nil {
					return err
				}
			}
			pub, secret, err := minisign.GenerateKey(nil)
			if err != nil {
				return fmt.Errorf("generate key: %w", err)
			}
			var secretText []byte
			if password == "" {
				secretText, err = secret.MarshalText()
			} else {
				g.info("berth: encrypting the secret key (scrypt; this takes a few seconds)")
				secretText, err = minisign.EncryptKey(password, secret)
			}
			if err != nil {
				return fmt.Errorf("encode secret key: %w", err)
			}
			pubText, _ := pub.MarshalText()
			if err := writeKeyFiles(out, append(secretText, '\n'), append(pubText, '\n')); err != nil {
				return err
			}
			id := artifact.KeyID(pub.ID())
			if g.json() {
				return g.printJSON(map[string]any{"secret_key": out, "public_key_file": out + ".pub",
					"public_key": pub.String(), "key_id": id, "encrypted": password != ""})
			}
			protection := "password-protected"
			if password == "" {
				protection = "unencrypted"
			}
			fmt.Fprintf(g.Stdout, "wrote %s (secret key, %s) and %s (public key)\nkey ID %s\npublic key %s\n", out, protection, out+".pub", id, pub.String())
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output-file", "o", "", "secret key file to create; the public key goes to PATH.pub")
	cmd.Flags().BoolVar(&noPassword, "no-password", false, "write the secret key unencrypted (for a CI secret store)")
	return cmd
}

// writeKeyFiles creates both files, refusing to replace either; a failure
// leaves neither behind.
func writeKeyFiles(secretPath string, secret, public []byte) error {
	if err := createFile(secretPath, secret, 0o600); err != nil {
		return err
	}
	if err := createFile(secretPath+".pub", public, 0o644); err != nil {
		os.Remove(secretPath)
		return err
	}
	return nil
}

func createFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if errors.Is(err, os.ErrExist) {
		return usageErr(fmt.Errorf("%s exists; keygen never replaces a key: move it away or choose another -o", path))
	}
	if err != nil {
		return usageErr(fmt.Errorf("create key file: %w", err))
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write key file %s: %w", path, err)
	}
	return nil
}

// password returns the secret key password: BERTH_SIGN_KEY_PASSWORD, else
// asked on the terminal (twice when confirm). Without either it is a usage
// error: a prompt nobody can answer would hang a CI job.
func (g *Globals) password(prompt string, confirm bool) (string, error) {
	if pw := g.Env(passwordEnv); pw != "" {
		return pw, nil
	}
	f, ok := g.Stdin.(interface{ Fd() uintptr })
	if !ok || !g.StdinTerminal {
		hint := ""
		if confirm {
			hint = ", or pass --no-password for an unencrypted key"
		}
		return "", usageErr(fmt.Errorf("the secret key needs a password and there is no terminal to ask on: set %s%s", passwordEnv, hint))
	}
	read := func(p string) (string, error) {
		fmt.Fprint(g.Stderr, p)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(g.Stderr)
		if err != nil {
			return "", usageErr(fmt.Errorf("read password: %w", err))
		}
		return string(b), nil
	}
	pw, err := read(prompt)
	if err != nil {
		return "", err
	}
	if pw == "" {
		return "", usageErr(errors.New("empty password; use --no-password for an unencrypted key"))
	}
	if confirm {
		again, err := read("the same password again: ")
		if err != nil {
			return "", err
		}
		if again != pw {
			return "", usageErr(errors.New("the passwords differ; nothing was written"))
		}
	}
	return pw, nil
}

// loadSignKey reads the secret key of --sign-key, asking for its password
// when it is encrypted. It runs before anything is uploaded.
func (g *Globals) loadSignKey(path string) (*minisign.PrivateKey, error) {
	data, err := readKeyFile(path)
	if err != nil {
		return nil, usageErr(fmt.Errorf("--sign-key: %w", err))
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		g.info("berth: warning: secret key %s can be read by other users (mode %04o); chmod 600 it", path, fi.Mode().Perm())
	}
	password := ""
	if minisign.IsEncrypted(data) {
		if password, err = g.password(fmt.Sprintf("password for %s: ", path), false); err != nil {
			return nil, err
		}
	}
	key, err := artifact.ParseSecretKey(data, password)
	if err != nil {
		return nil, fmt.Errorf("--sign-key %s: %w", path, err)
	}
	return &key, nil
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read key file %s: %w", path, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s is not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("read key file %s: %w", path, err)
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("key file %s is larger than any minisign key", path)
	}
	return data, nil
}

// trustedKeys resolves the keys download and info check signatures
// against: the --trusted-key flags when given, else the config file's
// trusted_keys. An entry is a public key (RWQ...) or a .pub file; in the
// config file a path must be absolute, so the working directory cannot
// change what is trusted.
func trustedKeys(flags, configured []string) ([]minisign.PublicKey, error) {
	entries, fromConfig := flags, false
	if len(entries) == 0 {
		entries, fromConfig = configured, true
	}
	var keys []minisign.PublicKey
	for _, e := range entries {
		key, err := artifact.ParsePublicKey(e)
		if err != nil {
			if fromConfig && !filepath.IsAbs(e) {
				return nil, fmt.Errorf("trusted_keys entry %q: give a minisign public key (RWQ...) or the absolute path of a .pub file: %w", e, config.ErrInvalid)
			}
			key, err = readPublicKey(e)
		}
		if errors.Is(err, os.ErrNotExist) {
			err = fmt.Errorf("%q is neither a minisign public key (RWQ...) nor an existing file", e)
		}
		if err != nil && fromConfig {
			return nil, fmt.Errorf("trusted_keys entry: %w: %w", err, config.ErrInvalid)
		}
		if err != nil {
			return nil, usageErr(fmt.Errorf("--trusted-key: %w", err))
		}
		keys = append(keys, key)
	}
	return keys, nil
}

func readPublicKey(path string) (minisign.PublicKey, error) {
	data, err := readKeyFile(path)
	if err != nil {
		return minisign.PublicKey{}, err
	}
	key, err := artifact.ParsePublicKey(string(data))
	if err != nil {
		return key, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

// warnPlainHTTP says once, on stderr, which stores are reached over plain
// http on another host: anyone on the way can read and replace artifacts
// and their manifests, checksums included.
func (g *Globals) warnPlainHTTP(regions []config.Region) {
	var plain []string
	for _, r := range regions {
		u, err := config.ParseStore(r.Store)
		if err != nil || u.Scheme != "s3" {
			continue
		}
		endpoint := u.Endpoint
		for _, v := range []string{"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"} {
			if endpoint == "" {
				endpoint = g.Env(v)
			}
		}
		if host, ok := plainHTTPHost(endpoint); ok {
			plain = append(plain, fmt.Sprintf("%s (http://%s)", r.Name, host))
		}
	}
	if len(plain) > 0 {
		g.info("berth: warning: %s reached over plain http: anyone on the network path can read and replace artifacts and manifests; use https, or sign releases (stage --sign-key) and download with --trusted-key",
			strings.Join(plain, ", "))
	}
}

// plainHTTPHost returns the host of an http:// endpoint that is not on
// this machine. Names are not resolved: only "localhost" and loopback
// addresses count as local.
func plainHTTPHost(endpoint string) (string, bool) {
	u, err := url.Parse(endpoint)
	if err != nil || !strings.EqualFold(u.Scheme, "http") || u.Host == "" {
		return "", false
	}
	host := strings.ToLower(u.Hostname())
	if host == "localhost" {
		return "", false
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Unmap().IsLoopback() {
		return "", false
	}
	return u.Host, true // the host only: the URL may carry credentials
}
