package artifact

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrInvalid marks input that breaks a naming rule; nothing was attempted.
var ErrInvalid = errors.New("invalid input")

// Limits on outside input. They keep keys, manifests and S3 requests within
// what every store accepts.
const (
	MaxProjectLen     = 64
	MaxVersionLen     = 128
	MaxMetadataKeys   = 64
	MaxMetadataKeyLen = 128
	MaxMetadataValLen = 1024
	MaxMetadataBytes  = 16 * 1024
	MaxFilenameLen    = 255
	ReservedPrefix    = "berth:"
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrInvalid)
}

// ValidateProject checks a project name: 1 to 64 characters of lower-case
// letters, digits, '.', '_' and '-', starting with a letter or digit. The
// rule keeps names usable as S3 key segments and SSM parameter path parts.
func ValidateProject(name string) error {
	if name == "" {
		return invalid("project name is empty")
	}
	if len(name) > MaxProjectLen {
		return invalid("project name %.20q... is %d characters long; the limit is %d", name, len(name), MaxProjectLen)
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || (i > 0 && (r == '.' || r == '_' || r == '-'))
		if !ok {
			return invalid("project name %q: character %q at position %d is not allowed; use lower-case letters, digits, '.', '_' and '-', starting with a letter or digit", name, r, i+1)
		}
	}
	if strings.Contains(name, "..") {
		return invalid("project name %q must not contain \"..\"", name)
	}
	return nil
}

// Version is a parsed Semantic Version 2.0.0 (https://semver.org):
// MAJOR.MINOR.PATCH with an optional -PRERELEASE and +BUILD. No leading "v".
type Version struct {
	Major, Minor, Patch uint64
	Pre                 []string
	Build               string
	raw                 string
}

func (v Version) String() string { return v.raw }

// ParseVersion parses s by the SemVer 2.0.0 grammar.
func ParseVersion(s string) (Version, error) {
	fail := func(why string) (Version, error) {
		return Version{}, invalid("version %q is not a semantic version (MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD], for example 1.4.0 or 2.0.0-rc.1): %s", s, why)
	}
	if s == "" {
		return fail("it is empty")
	}
	if len(s) > MaxVersionLen {
		return Version{}, invalid("version is %d characters long; the limit is %d", len(s), MaxVersionLen)
	}
	if s == "latest" {
		return fail("\"latest\" is reserved for the latest-version pointer")
	}
	if len(s) > 1 && (s[0] == 'v' || s[0] == 'V') && s[1] >= '0' && s[1] <= '9' {
		return fail("drop the leading \"v\"")
	}
	v := Version{raw: s}
	rest := s
	if i := strings.IndexByte(rest, '+'); i >= 0 {
		v.Build = rest[i+1:]
		rest = rest[:i]
		if err := checkIdents(v.Build, false); err != "" {
			return fail("build metadata " + err)
		}
	}
	if i := strings.IndexByte(rest, '-'); i >= 0 {
		pre := rest[i+1:]
		rest = rest[:i]
		if err := checkIdents(pre, true); err != "" {
			return fail("pre-release " + err)
		}
		v.Pre = strings.Split(pre, ".")
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return fail("it needs three numbers separated by dots")
	}
	nums := []*uint64{&v.Major, &v.Minor, &v.Patch}
	for i, p := range parts {
		n, err := parseNumeric(p)
		if err != "" {
			return fail(err)
		}
		*nums[i] = n
	}
	return v, nil
}

func parseNumeric(p string) (uint64, string) {
	if p == "" {
		return 0, "a number is empty"
	}
	if len(p) > 1 && p[0] == '0' {
		return 0, fmt.Sprintf("number %q has a leading zero", p)
	}
	for _, r := range p {
		if r < '0' || r > '9' {
			return 0, fmt.Sprintf("%q is not a number", p)
		}
	}
	n, err := strconv.ParseUint(p, 10, 64)
	if err != nil {
		return 0, fmt.Sprintf("number %q is too large", p)
	}
	return n, ""
}

func checkIdents(s string, pre bool) string {
	for _, id := range strings.Split(s, ".") {
		if id == "" {
			return "has an empty identifier"
		}
		numeric := true
		for _, r := range id {
			switch {
			case r >= '0' && r <= '9':
			case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '-':
				numeric = false
			default:
				return fmt.Sprintf("identifier %q may hold only letters, digits and '-'", id)
			}
		}
		if pre && numeric && len(id) > 1 && id[0] == '0' {
			return fmt.Sprintf("numeric identifier %q has a leading zero", id)
		}
	}
	return ""
}

// Compare orders versions by SemVer precedence; build metadata is ignored
// for precedence, then compared as text so the order is total.
func (v Version) Compare(w Version) int {
	for _, c := range [][2]uint64{{v.Major, w.Major}, {v.Minor, w.Minor}, {v.Patch, w.Patch}} {
		if c[0] != c[1] {
			if c[0] < c[1] {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(v.Pre) == 0 && len(w.Pre) > 0:
		return 1
	case len(v.Pre) > 0 && len(w.Pre) == 0:
		return -1
	}
	for i := 0; i < len(v.Pre) && i < len(w.Pre); i++ {
		if c := compareIdent(v.Pre[i], w.Pre[i]); c != 0 {
			return c
		}
	}
	if c := cmpInt(len(v.Pre), len(w.Pre)); c != 0 {
		return c
	}
	return strings.Compare(v.Build, w.Build)
}

func compareIdent(a, b string) int {
	an, aerr := strconv.ParseUint(a, 10, 64)
	bn, berr := strconv.ParseUint(b, 10, 64)
	switch {
	case aerr == nil && berr == nil:
		if an != bn {
			if an < bn {
				return -1
			}
			return 1
		}
		return 0
	case aerr == nil:
		return -1 // numeric identifiers sort before alphanumeric ones
	case berr == nil:
		return 1
	}
	return strings.Compare(a, b)
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// CompareVersions compares two version strings; unparsable ones sort first.
func CompareVersions(a, b string) int {
	va, errA := ParseVersion(a)
	vb, errB := ParseVersion(b)
	switch {
	case errA != nil && errB != nil:
		return strings.Compare(a, b)
	case errA != nil:
		return -1
	case errB != nil:
		return 1
	}
	return va.Compare(vb)
}

// ValidateMetadata checks user metadata: keys start with a letter or digit
// and hold letters, digits and ". _ - : /"; the "berth:" prefix is reserved;
// values are printable UTF-8; sizes are bounded so a manifest stays small.
func ValidateMetadata(md map[string]string) error {
	if len(md) > MaxMetadataKeys {
		return invalid("%d metadata keys; the limit is %d", len(md), MaxMetadataKeys)
	}
	total := 0
	for k, v := range md {
		if err := validateMetadataKey(k); err != nil {
			return err
		}
		if len(v) > MaxMetadataValLen {
			return invalid("metadata value of %q is %d bytes; the limit is %d", k, len(v), MaxMetadataValLen)
		}
		if !utf8.ValidString(v) {
			return invalid("metadata value of %q is not valid UTF-8", k)
		}
		for _, r := range v {
			if unicode.IsControl(r) && r != '\t' {
				return invalid("metadata value of %q contains control character %q", k, r)
			}
		}
		total += len(k) + len(v)
	}
	if total > MaxMetadataBytes {
		return invalid("metadata is %d bytes in all; the limit is %d", total, MaxMetadataBytes)
	}
	return nil
}

func validateMetadataKey(k string) error {
	if k == "" {
		return invalid("metadata key is empty")
	}
	if len(k) > MaxMetadataKeyLen {
		return invalid("metadata key %.20q... is %d bytes; the limit is %d", k, len(k), MaxMetadataKeyLen)
	}
	if strings.HasPrefix(strings.ToLower(k), ReservedPrefix) {
		return invalid("metadata key %q uses the reserved prefix %q", k, ReservedPrefix)
	}
	for i, r := range k {
		ok := r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			(i > 0 && strings.ContainsRune("._-:/", r)))
		if !ok {
			return invalid("metadata key %q: character %q is not allowed; use letters, digits and '.', '_', '-', ':', '/', starting with a letter or digit", k, r)
		}
	}
	return nil
}

// ParseMetadata turns KEY=VALUE pairs into a map and validates it.
func ParseMetadata(pairs []string) (map[string]string, error) {
	md := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return nil, invalid("metadata %q is not KEY=VALUE", p)
		}
		if _, dup := md[k]; dup {
			return nil, invalid("metadata key %q given twice", k)
		}
		md[k] = v
	}
	if err := ValidateMetadata(md); err != nil {
		return nil, err
	}
	return md, nil
}

// ValidateFilename checks the file name recorded with a version: a plain
// base name, so a download can never write outside its directory.
func ValidateFilename(name string) error {
	switch {
	case name == "":
		return invalid("file name is empty")
	case len(name) > MaxFilenameLen:
		return invalid("file name is %d bytes; the limit is %d", len(name), MaxFilenameLen)
	case name == "." || name == "..":
		return invalid("file name %q is not a file name", name)
	case strings.ContainsAny(name, "/\\\x00"):
		return invalid("file name %q must not contain a path separator", name)
	case filepath.Base(name) != name:
		return invalid("file name %q is not a base name", name)
	case !utf8.ValidString(name):
		return invalid("file name is not valid UTF-8")
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return invalid("file name %q contains control character %q", name, r)
		}
	}
	return nil
}
