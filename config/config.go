// Package config reads and writes berth's configuration file and applies
// the precedence flags > BERTH_* environment > file > defaults.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// ErrInvalid marks a configuration that cannot be used as given.
var ErrInvalid = errors.New("invalid configuration")

// MaxFileSize caps a config file. berth writes a few hundred bytes; a file
// far larger is a mistake (or a device) and is refused before parsing.
const MaxFileSize = 1 << 20

// maxEcho caps a value repeated in an error message, so a long or binary
// value cannot flood the terminal.
const maxEcho = 64

// LocalName is the per-directory config file. berth reads it from the
// working directory only when the user trusts that directory (TrustedDirs),
// because a checkout is not the user's to configure.
const LocalName = "berth.yaml"

// Config is the file format (YAML).
type Config struct {
	// Prefix is prepended to every key in every store ("releases").
	Prefix string `yaml:"prefix,omitempty"`
	// Pointers is "store" (latest.json in each store, the default) or
	// "ssm:/PARAM/PREFIX" (an SSM parameter per project in each region).
	Pointers string   `yaml:"pointers,omitempty"`
	Regions  []Region `yaml:"regions"`
	// TrustedDirs are directories whose ./berth.yaml berth reads instead
	// of this file, like git's safe.directory. Only the user's own config
	// file (DefaultPath) is consulted for it.
	TrustedDirs []string `yaml:"trusted_dirs,omitempty"`
	// TrustedKeys are minisign public keys (RWQ...) or absolute paths of
	// .pub files; when set, download accepts only versions they signed.
	TrustedKeys []string `yaml:"trusted_keys,omitempty"`
	// Quotas are the service quotas the data plane needs in every region
	// ("berth dataplane quotas").
	Quotas []Quota `yaml:"quotas,omitempty"`
}

// Region names one store. Name is what users pass to --region.
type Region struct {
	Name  string `yaml:"name"`
	Store string `yaml:"store"`
	// Cache is the store of "berth cache" in this region (a cache bucket
	// with an expiration lifecycle). Empty: the artifact store, under
	// the key prefix "_cache/", which no project name can take.
	Cache string `yaml:"cache,omitempty"`
}

// Store is a parsed store URL.
type Store struct {
	Scheme          string // "file" or "s3"
	Dir             string // file
	Bucket          string // s3
	BucketParameter string // s3: SSM parameter holding the bucket name
	Region          string // s3: AWS region of the bucket
	Endpoint        string // s3: S3-compatible endpoint
	PathStyle       bool
}

var (
	regionName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	ssmName    = regexp.MustCompile(`^/[a-zA-Z0-9_.\-/]{1,1000}$`)
	keyPrefix  = regexp.MustCompile(`^[A-Za-z0-9!_.*'()/-]{0,512}$`)
)

// ParseStore parses a store URL:
//
//	file:///absolute/dir
//	s3://BUCKET?region=R[&endpoint=URL][&path_style=true]
//	s3://?region=R&bucket_parameter=/ssm/param/name
func ParseStore(raw string) (Store, error) {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the whole URL
		}
		return Store{}, fmt.Errorf("store URL %s: %s: %w", quote(raw), clean(err.Error()), ErrInvalid)
	}
	q := u.Query()
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return Store{}, fmt.Errorf("store URL %s: write file:///absolute/dir (three slashes): %w", quote(raw), ErrInvalid)
		}
		if !filepath.IsAbs(u.Path) || len(q) > 0 {
			return Store{}, fmt.Errorf("store URL %s: a file store needs an absolute directory and no options, as in file:///var/lib/berth: %w", quote(raw), ErrInvalid)
		}
		dir := filepath.Clean(u.Path)
		if dir == filepath.Dir(dir) {
			return Store{}, fmt.Errorf("store URL %s names the filesystem root; name a directory for the store, as in file:///var/lib/berth: %w", quote(raw), ErrInvalid)
		}
		return Store{Scheme: "file", Dir: dir}, nil
	case "s3":
		s := Store{Scheme: "s3", Bucket: u.Host, Region: q.Get("region"), Endpoint: q.Get("endpoint"), BucketParameter: q.Get("bucket_parameter")}
		for k := range q {
			switch k {
			case "region", "endpoint", "path_style", "bucket_parameter":
			default:
				return Store{}, fmt.Errorf("store URL %s: unknown option %s (known: region, endpoint, path_style, bucket_parameter): %w", quote(raw), quote(k), ErrInvalid)
			}
		}
		if u.Path != "" && u.Path != "/" {
			return Store{}, fmt.Errorf("store URL %s: put a key prefix in the prefix setting, not in the URL path: %w", quote(raw), ErrInvalid)
		}
		switch ps := q.Get("path_style"); ps {
		case "", "false":
		case "true":
			s.PathStyle = true
		default:
			return Store{}, fmt.Errorf("store URL %s: path_style must be true or false: %w", quote(raw), ErrInvalid)
		}
		switch {
		case s.Bucket == "" && s.BucketParameter == "":
			return Store{}, fmt.Errorf("store URL %s: name a bucket (s3://BUCKET?region=R) or an SSM parameter (s3://?region=R&bucket_parameter=/name): %w", quote(raw), ErrInvalid)
		case s.Bucket != "" && s.BucketParameter != "":
			return Store{}, fmt.Errorf("store URL %s: give a bucket or bucket_parameter, not both: %w", quote(raw), ErrInvalid)
		case s.Bucket != "" && (!bucketName.MatchString(s.Bucket) || strings.Contains(s.Bucket, "..")):
			return Store{}, fmt.Errorf("store URL %s: %s is not a valid bucket name (3-63 lower-case letters, digits, '.' and '-'): %w", quote(raw), quote(s.Bucket), ErrInvalid)
		case s.BucketParameter != "" && !ssmName.MatchString(s.BucketParameter):
			return Store{}, fmt.Errorf("store URL %s: bucket_parameter %s is not an SSM parameter path such as /berth/bucket: %w", quote(raw), quote(s.BucketParameter), ErrInvalid)
		case s.BucketParameter != "" && s.Region == "":
			return Store{}, fmt.Errorf("store URL %s: bucket_parameter needs region=R: %w", quote(raw), ErrInvalid)
		case s.Region != "" && !regionName.MatchString(s.Region):
			return Store{}, fmt.Errorf("store URL %s: %s is not a region name such as eu-west-1: %w", quote(raw), quote(s.Region), ErrInvalid)
		}
		if s.Endpoint != "" {
			e, err := url.Parse(s.Endpoint)
			if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
				return Store{}, fmt.Errorf("store URL %s: endpoint %s must be an http(s) URL: %w", quote(raw), quote(s.Endpoint), ErrInvalid)
			}
		}
		return s, nil
	case "":
		return Store{}, fmt.Errorf("store URL %s has no scheme; use file:///dir or s3://bucket?region=R: %w", quote(raw), ErrInvalid)
	}
	return Store{}, fmt.Errorf("store URL %s: unknown scheme %s; use file or s3: %w", quote(raw), quote(u.Scheme), ErrInvalid)
}

// ParseRegionFlag parses NAME=URL.
func ParseRegionFlag(s string) (Region, error) {
	name, raw, ok := strings.Cut(s, "=")
	if !ok {
		return Region{}, fmt.Errorf("store %s: write NAME=URL, as in eu-west-1=s3://bucket?region=eu-west-1: %w", quote(s), ErrInvalid)
	}
	r := Region{Name: name, Store: raw}
	return r, r.validate()
}

func (r Region) validate() error {
	if !regionName.MatchString(r.Name) {
		return fmt.Errorf("region name %s: use lower-case letters, digits and '-', such as eu-west-1: %w", quote(r.Name), ErrInvalid)
	}
	if _, err := ParseStore(r.Store); err != nil {
		return err
	}
	if r.Cache != "" {
		if _, err := ParseStore(r.Cache); err != nil {
			return fmt.Errorf("region %s cache: %w", r.Name, err)
		}
	}
	return nil
}

// Validate checks the whole configuration. A file may hold only
// trusted_dirs or trusted_keys; the regions then come from a trusted
// ./berth.yaml, flags, the environment or the embedded default.
func (c *Config) Validate() error {
	if len(c.Regions) == 0 && len(c.TrustedDirs) == 0 && len(c.TrustedKeys) == 0 {
		return fmt.Errorf("no regions configured: %w", ErrInvalid)
	}
	for _, d := range c.TrustedDirs {
		if !filepath.IsAbs(d) && d != "~" && !strings.HasPrefix(d, "~/") {
			return fmt.Errorf("trusted_dirs entry %s: use an absolute directory such as /home/me/src/app or ~/src/app: %w", quote(d), ErrInvalid)
		}
	}
	seen := map[string]bool{}
	for _, r := range c.Regions {
		if err := r.validate(); err != nil {
			return err
		}
		if seen[r.Name] {
			return fmt.Errorf("region %s configured twice: %w", quote(r.Name), ErrInvalid)
		}
		seen[r.Name] = true
	}
	if !keyPrefix.MatchString(c.Prefix) || strings.HasPrefix(c.Prefix, "/") || strings.Contains(c.Prefix, "//") || strings.Contains(c.Prefix, "..") {
		return fmt.Errorf("prefix %s: use letters, digits and \"/_.-\" with no leading slash: %w", quote(c.Prefix), ErrInvalid)
	}
	if _, err := c.SSMPrefix(); err != nil {
		return err
	}
	if err := validateQuotas(c.Quotas); err != nil {
		return err
	}
	return nil
}

// SSMPrefix returns the SSM parameter prefix, or "" for in-store pointers.
func (c *Config) SSMPrefix() (string, error) {
	switch p := c.Pointers; {
	case p == "" || p == "store":
		return "", nil
	case strings.HasPrefix(p, "ssm:"):
		name := strings.TrimSuffix(strings.TrimPrefix(p, "ssm:"), "/")
		if !ssmName.MatchString(name) {
			return "", fmt.Errorf("pointers %s: write ssm:/PARAM/PREFIX, as in ssm:/berth/releases: %w", quote(p), ErrInvalid)
		}
		return name, nil
	}
	return "", fmt.Errorf("pointers %s: use \"store\" or \"ssm:/PARAM/PREFIX\": %w", quote(c.Pointers), ErrInvalid)
}

// Load reads the file at path. A missing file is reported with
// errors.Is(err, os.ErrNotExist). At most MaxFileSize bytes are read.
func Load(path string) (*Config, error) {
	// O_NONBLOCK: opening a named pipe with no writer must not hang. Pipes
	// (--config <(command)) and devices are read like files, up to the cap.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("config %s is a directory; name the file: %w", path, ErrInvalid)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("config %s is larger than %d KiB; is it the right file?: %w", path, MaxFileSize>>10, ErrInvalid)
	}
	return Parse(path, data)
}

// Parse decodes a config file, refusing unknown fields so typos surface.
func Parse(name string, data []byte) (*Config, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("config %s is larger than %d KiB; is it the right file?: %w", name, MaxFileSize>>10, ErrInvalid)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parse config %s: %s: %w", name, yamlError(err), ErrInvalid)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", name, err)
	}
	return &c, nil
}

// Write saves c at path atomically, creating directories. The trusted_dirs
// and trusted_keys of the file it replaces are kept unless c sets its own.
func Write(path string, c *Config, overwrite bool) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if !overwrite {
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("config %s exists: %w", path, os.ErrExist)
		}
	}
	if len(c.TrustedDirs) == 0 {
		// Commands that rewrite the file (init --force, dataplane deploy)
		// know nothing of the user's trust list; keep it.
		if old, err := Load(path); err == nil && len(old.TrustedDirs) > 0 {
			kept := *c
			kept.TrustedDirs = old.TrustedDirs
			c = &kept
		}
	}
	if len(c.TrustedKeys) == 0 {
		// Nor of its trusted keys: dropping them would quietly accept
		// unsigned versions.
		if old, err := Load(path); err == nil && len(old.TrustedKeys) > 0 {
			kept := *c
			kept.TrustedKeys = old.TrustedKeys
			c = &kept
		}
	}
	if len(c.Quotas) == 0 {
		// Nor of the data plane's desired quotas.
		if old, err := Load(path); err == nil && len(old.Quotas) > 0 {
			kept := *c
			kept.Quotas = old.Quotas
			c = &kept
		}
	}
	data, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	data = append([]byte("# berth configuration; see \"berth init --help\"\n"), data...)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create config directory: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config-*")
	if err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write config: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return os.Rename(tmp.Name(), path)
}

// Env is the environment lookup, injected so tests need no global state.
type Env func(string) string

// Overrides are settings from flags; empty fields mean "not given".
type Overrides struct {
	Stores   []string // NAME=URL
	Prefix   *string
	Pointers string
}

// Resolve applies flags, then BERTH_STORES / BERTH_PREFIX / BERTH_POINTERS,
// over the file's values. base may be nil when there is no file.
func Resolve(base *Config, env Env, o Overrides) (*Config, error) {
	c := &Config{}
	if base != nil {
		*c = *base
		c.Regions = append([]Region(nil), base.Regions...)
	}
	stores := o.Stores
	if len(stores) == 0 {
		if v := env("BERTH_STORES"); v != "" {
			stores = strings.Split(v, ",")
		}
	}
	if len(stores) > 0 {
		c.Regions = nil
		for _, s := range stores {
			r, err := ParseRegionFlag(strings.TrimSpace(s))
			if err != nil {
				return nil, err
			}
			c.Regions = append(c.Regions, r)
		}
	}
	switch {
	case o.Prefix != nil:
		c.Prefix = *o.Prefix
	case env("BERTH_PREFIX") != "":
		c.Prefix = env("BERTH_PREFIX")
	}
	switch {
	case o.Pointers != "":
		c.Pointers = o.Pointers
	case env("BERTH_POINTERS") != "":
		c.Pointers = env("BERTH_POINTERS")
	}
	c.Prefix = strings.Trim(c.Prefix, "/")
	if len(c.Regions) == 0 {
		return c, nil // the caller falls back to the embedded default
	}
	return c, c.Validate()
}

// DefaultPath is the user's config file, $XDG_CONFIG_HOME/berth/config.yaml:
// where berth writes its config unless --config names another file. It is
// never ./berth.yaml, which only Find reads, and only when trusted.
func DefaultPath(env Env) string {
	return filepath.Join(xdg(env, "XDG_CONFIG_HOME", ".config"), "berth", "config.yaml")
}

// Found is the configuration Find chose.
type Found struct {
	Path    string  // the file read; "" when there is none
	Config  *Config // its contents; nil when there is none
	Local   bool    // Path is the working directory's berth.yaml, trusted by the user's file
	Ignored string  // the working directory's berth.yaml, not read: the directory is not trusted
}

// Find reads the configuration berth uses when no file is named (--config,
// BERTH_CONFIG): the user's file (DefaultPath), or dir's berth.yaml when the
// user's file lists dir under trusted_dirs. A berth.yaml in an untrusted
// directory is only reported, so a checkout cannot point berth (and the
// user's credentials) at an endpoint of its choosing.
func Find(env Env, dir string) (Found, error) {
	var f Found
	userPath := DefaultPath(env)
	user, err := Load(userPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return f, err
	}
	if dir != "" {
		local := filepath.Join(dir, LocalName)
		if _, err := os.Stat(local); err == nil && local != userPath {
			if user == nil || !user.Trusts(env, dir) {
				f.Ignored = local
			} else {
				c, err := Load(local)
				if err != nil {
					return f, err
				}
				return Found{Path: local, Config: c, Local: true}, nil
			}
		}
	}
	if user != nil {
		f.Path, f.Config = userPath, user
	}
	return f, nil
}

// Trusts reports whether dir is one of c.TrustedDirs. Both sides are
// compared cleaned and with links resolved; "~" is the home directory.
func (c *Config) Trusts(env Env, dir string) bool {
	want := canonical(dir)
	for _, d := range c.TrustedDirs {
		if d == "~" || strings.HasPrefix(d, "~/") {
			d = filepath.Join(home(env), strings.TrimPrefix(d, "~"))
		}
		if filepath.IsAbs(d) && canonical(d) == want {
			return true
		}
	}
	return false
}

func canonical(dir string) string {
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		return r
	}
	return filepath.Clean(dir)
}

// DefaultDataDir is the embedded default store: $XDG_DATA_HOME/berth.
func DefaultDataDir(env Env) string {
	return filepath.Join(xdg(env, "XDG_DATA_HOME", filepath.Join(".local", "share")), "berth")
}

// DefaultStateDir keeps berth's own bookkeeping: $XDG_STATE_HOME/berth.
func DefaultStateDir(env Env) string {
	return filepath.Join(xdg(env, "XDG_STATE_HOME", filepath.Join(".local", "state")), "berth")
}

func xdg(env Env, name, fallback string) string {
	if v := env(name); v != "" && filepath.IsAbs(v) {
		return v
	}
	return filepath.Join(home(env), fallback)
}

func home(env Env) string {
	h := env("HOME")
	if h == "" {
		h, _ = os.UserHomeDir()
	}
	return h
}

// quote repeats a value in an error message: quoted, control characters
// escaped, and cut after maxEcho bytes with its full length said.
func quote(s string) string {
	if len(s) <= maxEcho {
		return strconv.Quote(s)
	}
	n := maxEcho
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return fmt.Sprintf("%s... (%d bytes)", strconv.Quote(s[:n]), len(s))
}

// clean makes a message from a parser fit for a terminal: control and
// invalid characters escaped, at most a few lines' worth.
func clean(msg string) string {
	const max = 200
	var b strings.Builder
	for i, r := range msg {
		if b.Len() >= max {
			fmt.Fprintf(&b, "... (%d more bytes)", len(msg)-i)
			break
		}
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(msg[i:], "\uFFFD"):
			fmt.Fprintf(&b, `\x%02x`, msg[i])
		case unicode.IsControl(r) || !unicode.IsPrint(r) && r != ' ':
			b.WriteString(strings.Trim(strconv.QuoteRune(r), "'"))
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// yamlError keeps the first of the YAML decoder's errors (it lists every
// field it could not set, one per line).
func yamlError(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg := te.Errors[0]
		if n := len(te.Errors) - 1; n > 0 {
			msg += fmt.Sprintf(" (and %d more)", n)
		}
		return clean(msg)
	}
	return clean(strings.TrimPrefix(err.Error(), "yaml: "))
}
