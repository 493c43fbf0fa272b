// Package config reads and writes berth's configuration file and applies
// the precedence flags > BERTH_* environment > file > defaults.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// ErrInvalid marks a configuration that cannot be used as given.
var ErrInvalid = errors.New("invalid configuration")

// Config is the file format (YAML).
type Config struct {
	// Prefix is prepended to every key in every store ("releases").
	Prefix string `yaml:"prefix,omitempty"`
	// Pointers is "store" (latest.json in each store, the default) or
	// "ssm:/PARAM/PREFIX" (an SSM parameter per project in each region).
	Pointers string   `yaml:"pointers,omitempty"`
	Regions  []Region `yaml:"regions"`
}

// Region names one store. Name is what users pass to --region.
type Region struct {
	Name  string `yaml:"name"`
	Store string `yaml:"store"`
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
		return Store{}, fmt.Errorf("store URL %q: %v: %w", raw, err, ErrInvalid)
	}
	q := u.Query()
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return Store{}, fmt.Errorf("store URL %q: write file:///absolute/dir (three slashes): %w", raw, ErrInvalid)
		}
		if !filepath.IsAbs(u.Path) || len(q) > 0 {
			return Store{}, fmt.Errorf("store URL %q: a file store needs an absolute directory and no options, as in file:///var/lib/berth: %w", raw, ErrInvalid)
		}
		return Store{Scheme: "file", Dir: filepath.Clean(u.Path)}, nil
	case "s3":
		s := Store{Scheme: "s3", Bucket: u.Host, Region: q.Get("region"), Endpoint: q.Get("endpoint"), BucketParameter: q.Get("bucket_parameter")}
		for k := range q {
			switch k {
			case "region", "endpoint", "path_style", "bucket_parameter":
			default:
				return Store{}, fmt.Errorf("store URL %q: unknown option %q (known: region, endpoint, path_style, bucket_parameter): %w", raw, k, ErrInvalid)
			}
		}
		if u.Path != "" && u.Path != "/" {
			return Store{}, fmt.Errorf("store URL %q: put a key prefix in the prefix setting, not in the URL path: %w", raw, ErrInvalid)
		}
		switch ps := q.Get("path_style"); ps {
		case "", "false":
		case "true":
			s.PathStyle = true
		default:
			return Store{}, fmt.Errorf("store URL %q: path_style must be true or false: %w", raw, ErrInvalid)
		}
		switch {
		case s.Bucket == "" && s.BucketParameter == "":
			return Store{}, fmt.Errorf("store URL %q: name a bucket (s3://BUCKET?region=R) or an SSM parameter (s3://?region=R&bucket_parameter=/name): %w", raw, ErrInvalid)
		case s.Bucket != "" && s.BucketParameter != "":
			return Store{}, fmt.Errorf("store URL %q: give a bucket or bucket_parameter, not both: %w", raw, ErrInvalid)
		case s.Bucket != "" && (!bucketName.MatchString(s.Bucket) || strings.Contains(s.Bucket, "..")):
			return Store{}, fmt.Errorf("store URL %q: %q is not a valid bucket name (3-63 lower-case letters, digits, '.' and '-'): %w", raw, s.Bucket, ErrInvalid)
		case s.BucketParameter != "" && !ssmName.MatchString(s.BucketParameter):
			return Store{}, fmt.Errorf("store URL %q: bucket_parameter %q is not an SSM parameter path such as /berth/bucket: %w", raw, s.BucketParameter, ErrInvalid)
		case s.BucketParameter != "" && s.Region == "":
			return Store{}, fmt.Errorf("store URL %q: bucket_parameter needs region=R: %w", raw, ErrInvalid)
		case s.Region != "" && !regionName.MatchString(s.Region):
			return Store{}, fmt.Errorf("store URL %q: %q is not a region name such as eu-west-1: %w", raw, s.Region, ErrInvalid)
		}
		if s.Endpoint != "" {
			e, err := url.Parse(s.Endpoint)
			if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
				return Store{}, fmt.Errorf("store URL %q: endpoint %q must be an http(s) URL: %w", raw, s.Endpoint, ErrInvalid)
			}
		}
		return s, nil
	case "":
		return Store{}, fmt.Errorf("store URL %q has no scheme; use file:///dir or s3://bucket?region=R: %w", raw, ErrInvalid)
	}
	return Store{}, fmt.Errorf("store URL %q: unknown scheme %q; use file or s3: %w", raw, u.Scheme, ErrInvalid)
}

// ParseRegionFlag parses NAME=URL.
func ParseRegionFlag(s string) (Region, error) {
	name, raw, ok := strings.Cut(s, "=")
	if !ok {
		return Region{}, fmt.Errorf("store %q: write NAME=URL, as in eu-west-1=s3://bucket?region=eu-west-1: %w", s, ErrInvalid)
	}
	r := Region{Name: name, Store: raw}
	return r, r.validate()
}

func (r Region) validate() error {
	if !regionName.MatchString(r.Name) {
		return fmt.Errorf("region name %q: use lower-case letters, digits and '-', such as eu-west-1: %w", r.Name, ErrInvalid)
	}
	_, err := ParseStore(r.Store)
	return err
}

// Validate checks the whole configuration.
func (c *Config) Validate() error {
	if len(c.Regions) == 0 {
		return fmt.Errorf("no regions configured: %w", ErrInvalid)
	}
	seen := map[string]bool{}
	for _, r := range c.Regions {
		if err := r.validate(); err != nil {
			return err
		}
		if seen[r.Name] {
			return fmt.Errorf("region %q configured twice: %w", r.Name, ErrInvalid)
		}
		seen[r.Name] = true
	}
	if !keyPrefix.MatchString(c.Prefix) || strings.HasPrefix(c.Prefix, "/") || strings.Contains(c.Prefix, "//") || strings.Contains(c.Prefix, "..") {
		return fmt.Errorf("prefix %q: use letters, digits and \"/_.-\" with no leading slash: %w", c.Prefix, ErrInvalid)
	}
	if _, err := c.SSMPrefix(); err != nil {
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
			return "", fmt.Errorf("pointers %q: write ssm:/PARAM/PREFIX, as in ssm:/berth/releases: %w", p, ErrInvalid)
		}
		return name, nil
	}
	return "", fmt.Errorf("pointers %q: use \"store\" or \"ssm:/PARAM/PREFIX\": %w", c.Pointers, ErrInvalid)
}

// Load reads the file at path. A missing file is reported with
// errors.Is(err, os.ErrNotExist).
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes a config file, refusing unknown fields so typos surface.
func Parse(name string, data []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("parse config %s: %v: %w", name, err, ErrInvalid)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", name, err)
	}
	return &c, nil
}

// Write saves c at path atomically, creating directories.
func Write(path string, c *Config, overwrite bool) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if !overwrite {
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("config %s exists: %w", path, os.ErrExist)
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

// DefaultPath is where berth looks for its config: ./berth.yaml if present,
// else $XDG_CONFIG_HOME/berth/config.yaml.
func DefaultPath(env Env) string {
	if _, err := os.Stat("berth.yaml"); err == nil {
		return "berth.yaml"
	}
	return filepath.Join(xdg(env, "XDG_CONFIG_HOME", ".config"), "berth", "config.yaml")
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
	home := env("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	return filepath.Join(home, fallback)
}
