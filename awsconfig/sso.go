package awsconfig

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/berth-dev/berth/errkind"
)

// Session is an [sso-session NAME] block: the IAM Identity Center portal
// that "aws sso login --sso-session NAME" signs in to.
type Session struct {
	Name     string
	StartURL string
	Region   string
}

// Profile is one account and permission set reached through a session.
type Profile struct {
	Name      string // without the "profile " prefix
	AccountID string
	RoleName  string // the permission set
	Region    string // default region of commands run with the profile
	Output    string // default output format
}

// Scopes is what berth asks the portal for: listing and using accounts.
const Scopes = "sso:account:access"

// markPrefix starts the comment line that marks a section berth wrote;
// the session name follows, then ")". A comment, because the AWS CLI
// ignores comments wherever they are, and a person reading the file sees
// why the section may change under them.
const markPrefix = "# managed by berth sso config (session "

func mark(session string) string {
	return markPrefix + session + "); berth replaces or removes this section"
}

// managedBy returns the session whose mark the section carries.
func (s *section) managedBy() (string, bool) {
	for _, line := range s.body {
		t := strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(t, markPrefix); ok {
			name, _, ok := strings.Cut(rest, ")")
			return name, ok
		}
	}
	return "", false
}

var (
	sessionNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	profileNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,127}$`)
	accountIDRe   = regexp.MustCompile(`^[0-9]{12}$`)
	// Permission set names: 1-32 of [\w+=,.@-] (SSO Admin's pattern).
	roleNameRe = regexp.MustCompile(`^[A-Za-z0-9_+=,.@-]{1,32}$`)
	regionRe   = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	unsafeRe   = regexp.MustCompile(`[^a-z0-9_.-]+`)
	dashesRe   = regexp.MustCompile(`--+`)
)

// ProfileName is the name berth gives the profile of an account and
// permission set: ACCOUNTNAME-PERMISSIONSET, lower-cased, every run of
// other characters than letters, digits, '.', '_' and '-' made one '-'
// (and runs of '-' one '-').
// Deterministic, so scripts and other people's notes can name profiles.
func ProfileName(accountName, roleName string) string {
	n := unsafeRe.ReplaceAllString(strings.ToLower(accountName+"-"+roleName), "-")
	n = dashesRe.ReplaceAllString(n, "-")
	return strings.Trim(n, "-._")
}

// Validate checks what Apply would write: names a config file can hold
// and the AWS CLI can look up, and values without line breaks.
func (s Session) Validate() error {
	switch {
	case !sessionNameRe.MatchString(s.Name):
		return fmt.Errorf("session name %q: use letters, digits, '.', '_' and '-' (at most 64), as in --session corp: %w", clip(s.Name), errkind.Invalid)
	case !strings.HasPrefix(s.StartURL, "https://") || strings.ContainsAny(s.StartURL, " \t\r\n#;") || len(s.StartURL) <= len("https://"):
		return fmt.Errorf("start URL %q: give the AWS access portal URL, as in --start-url https://my-org.awsapps.com/start: %w", clip(s.StartURL), errkind.Invalid)
	case !regionRe.MatchString(s.Region):
		return fmt.Errorf("SSO region %q: give the region of IAM Identity Center, as in --sso-region eu-west-1: %w", clip(s.Region), errkind.Invalid)
	}
	return nil
}

func (p Profile) validate() error {
	switch {
	case !profileNameRe.MatchString(p.Name):
		return fmt.Errorf("profile name %q: not a name berth writes (lower-case letters, digits, '.', '_', '-'): %w", clip(p.Name), errkind.Invalid)
	case !accountIDRe.MatchString(p.AccountID):
		return fmt.Errorf("profile %s: account ID %q is not 12 digits: %w", p.Name, clip(p.AccountID), errkind.Invalid)
	case !roleNameRe.MatchString(p.RoleName):
		return fmt.Errorf("profile %s: permission set %q is not a permission set name: %w", p.Name, clip(p.RoleName), errkind.Invalid)
	case p.Region != "" && !regionRe.MatchString(p.Region):
		return fmt.Errorf("profile %s: region %q is not an AWS region such as eu-west-1: %w", p.Name, clip(p.Region), errkind.Invalid)
	case p.Output != "" && p.Output != "json" && p.Output != "text" && p.Output != "table" && p.Output != "yaml" && p.Output != "yaml-stream":
		return fmt.Errorf("profile %s: output %q: use json, text, table, yaml or yaml-stream: %w", p.Name, clip(p.Output), errkind.Invalid)
	}
	return nil
}

// Desired is what one session's managed sections should be.
type Desired struct {
	Session  Session
	Profiles []Profile
	// KeepProfiles leaves the session's managed profiles as they are,
	// for a run that could not ask the portal (not signed in yet).
	KeepProfiles bool
}

// Changes says what Apply did, by profile name.
type Changes struct {
	Session   string   `json:"session"` // "added", "updated" or "unchanged"
	Added     []string `json:"added"`
	Updated   []string `json:"updated"`
	Removed   []string `json:"removed"`
	Unchanged []string `json:"unchanged"`
}

// Any reports whether the file changed.
func (c Changes) Any() bool {
	return c.Session != "unchanged" || len(c.Added)+len(c.Updated)+len(c.Removed) > 0
}

// Apply makes the file hold d: the session block and its profiles are
// replaced where berth wrote them before (in place, so the file's order
// stays), added at the end otherwise, and profiles berth wrote for the
// same session that d no longer lists are removed. A section berth wants
// that it did not write, or wrote for another session, is a conflict and
// nothing is changed.
func (f *File) Apply(d Desired) (Changes, error) {
	if err := d.Session.Validate(); err != nil {
		return Changes{}, err
	}
	want := []*section{f.render("sso-session "+d.Session.Name, d.Session.Name, [][2]string{
		{"sso_start_url", d.Session.StartURL},
		{"sso_region", d.Session.Region},
		{"sso_registration_scopes", Scopes},
	})}
	seen := map[string]bool{}
	profiles := append([]Profile(nil), d.Profiles...)
	sort.Slice(profiles, func(i, j int) bool { return profiles[i].Name < profiles[j].Name })
	for _, p := range profiles {
		if err := p.validate(); err != nil {
			return Changes{}, err
		}
		if seen[p.Name] {
			return Changes{}, fmt.Errorf("two profiles would be called %s (account %s, permission set %s and another): %w", p.Name, p.AccountID, p.RoleName, errkind.Conflict)
		}
		seen[p.Name] = true
		kv := [][2]string{{"sso_session", d.Session.Name}, {"sso_account_id", p.AccountID}, {"sso_role_name", p.RoleName}}
		if p.Region != "" {
			kv = append(kv, [2]string{"region", p.Region})
		}
		if p.Output != "" {
			kv = append(kv, [2]string{"output", p.Output})
		}
		want = append(want, f.render("profile "+p.Name, d.Session.Name, kv))
	}

	// Check every conflict before changing anything.
	byName := map[string][]*section{}
	for _, s := range f.sections {
		byName[s.name] = append(byName[s.name], s)
	}
	for _, w := range want {
		for _, s := range byName[w.name] {
			owner, ok := s.managedBy()
			switch {
			case !ok:
				return Changes{}, fmt.Errorf("[%s] is already in the file and berth did not write it: rename or remove that section, or pick another --session: %w", w.name, errkind.Conflict)
			case owner != d.Session.Name:
				return Changes{}, fmt.Errorf("[%s] was written by berth for session %s: pick another --session, or remove that section: %w", w.name, owner, errkind.Conflict)
			}
		}
	}

	var c Changes
	wanted := map[string]*section{}
	for _, w := range want {
		wanted[w.name] = w
	}
	placed := map[string]bool{}
	var kept []*section
	for _, s := range f.sections {
		owner, managed := s.managedBy()
		w, isWanted := wanted[s.name]
		switch {
		case isWanted && !placed[s.name]:
			placed[s.name] = true
			if s.sameAs(w) {
				c.note(s.name, "unchanged")
				kept = append(kept, s)
				continue
			}
			c.note(s.name, "updated")
			// Keep the blank lines and comments that ended the old section:
			// they usually separate it from the next one.
			w.body = append(w.body, trailing(s.body)...)
			kept = append(kept, w)
		case isWanted:
			// A duplicate the AWS CLI would refuse; berth wrote it, so drop it.
		case managed && owner == d.Session.Name && strings.HasPrefix(s.name, "profile ") && !d.KeepProfiles:
			c.note(s.name, "removed")
		default:
			kept = append(kept, s)
		}
	}
	for _, w := range want {
		if placed[w.name] {
			continue
		}
		c.note(w.name, "added")
		if strings.TrimSpace(lastLine(f, kept)) != "" {
			f.separate(kept)
		}
		kept = append(kept, w)
	}
	f.sections = kept
	if len(want) > 0 {
		f.finalNewline = true
	}
	return c, nil
}

func (c *Changes) note(name, what string) {
	if strings.HasPrefix(name, "sso-session ") {
		c.Session = what
		return
	}
	p := strings.TrimPrefix(name, "profile ")
	switch what {
	case "added":
		c.Added = append(c.Added, p)
	case "updated":
		c.Updated = append(c.Updated, p)
	case "removed":
		c.Removed = append(c.Removed, p)
	default:
		c.Unchanged = append(c.Unchanged, p)
	}
}

// render builds a managed section with the file's line endings.
func (f *File) render(name, session string, kv [][2]string) *section {
	s := &section{name: name, header: f.eol("[" + name + "]")}
	s.body = append(s.body, f.eol(mark(session)))
	for _, p := range kv {
		s.body = append(s.body, f.eol(p[0]+" = "+p[1]))
	}
	return s
}

func (f *File) eol(line string) string {
	if f.newline == "\r\n" {
		return line + "\r"
	}
	return line
}

// sameAs compares a section in the file with a rendered one, ignoring
// the blank lines and comments after its last key.
func (s *section) sameAs(w *section) bool {
	body := s.body[:len(s.body)-len(trailing(s.body))]
	if strings.TrimSpace(s.header) != strings.TrimSpace(w.header) || len(body) != len(w.body) {
		return false
	}
	for i := range body {
		if strings.TrimSpace(body[i]) != strings.TrimSpace(w.body[i]) {
			return false
		}
	}
	return true
}

// trailing returns the blank and comment lines that end body.
func trailing(body []string) []string {
	i := len(body)
	for i > 0 {
		t := strings.TrimSpace(body[i-1])
		if t != "" && t[0] != '#' && t[0] != ';' {
			break
		}
		i--
	}
	// The mark is part of the section, not of what follows it.
	for j := i; j < len(body); j++ {
		if strings.HasPrefix(strings.TrimSpace(body[j]), markPrefix) {
			i = j + 1
		}
	}
	return append([]string(nil), body[i:]...)
}

// lastLine returns the last line of the file made of f.head and sections.
func lastLine(f *File, sections []*section) string {
	for i := len(sections) - 1; i >= 0; i-- {
		s := sections[i]
		if len(s.body) > 0 {
			return s.body[len(s.body)-1]
		}
		return s.header
	}
	if len(f.head) > 0 {
		return f.head[len(f.head)-1]
	}
	return ""
}

// separate ends the last section (or the head) with a blank line.
func (f *File) separate(sections []*section) {
	if n := len(sections); n > 0 {
		sections[n-1].body = append(sections[n-1].body, f.eol(""))
		return
	}
	f.head = append(f.head, f.eol(""))
}
