package awsconfig

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/berth-dev/berth/errkind"
)

// Options are the inputs of Configure.
type Options struct {
	// Path is the config file (see Path).
	Path string
	// Session names the sso-session block; an empty StartURL or Region
	// is taken from that block in the file, so a re-run needs no flags.
	Session Session
	// Region and Output are the profiles' defaults; an empty Region is
	// the session's region.
	Region, Output string
	// TokenPath returns where "aws sso login" caches the session's token.
	TokenPath func(session string) (string, error)
	// Portal returns a portal client for the session's region.
	Portal func(region string) Portal
	Now    time.Time
	// DryRun computes the diff and writes nothing.
	DryRun bool
}

// Result is what Configure did (or, with DryRun, would do).
type Result struct {
	Path    string  `json:"path"`
	Backup  string  `json:"backup,omitempty"`
	Diff    string  `json:"diff"`
	Changes Changes `json:"changes"`
	// SignedIn is false when there was no valid cached token: the session
	// block was written and the profiles left as they were.
	SignedIn    bool         `json:"signed_in"`
	NotSignedIn string       `json:"not_signed_in,omitempty"` // why, when SignedIn is false
	Assignments []Assignment `json:"assignments"`
	Written     bool         `json:"written"`
}

// Configure brings the session's block and profiles in the config file up
// to date with the portal, writing a backup first (unless DryRun).
func Configure(ctx context.Context, o Options) (*Result, error) {
	f, old, err := Read(o.Path)
	if err != nil {
		return nil, err
	}
	s := o.Session
	if !sessionNameRe.MatchString(s.Name) {
		return nil, s.Validate()
	}
	block := "sso-session " + s.Name
	if s.StartURL == "" {
		if s.StartURL, _ = f.Get(block, "sso_start_url"); s.StartURL == "" {
			return nil, fmt.Errorf("no [%s] block with sso_start_url in %s yet: give --start-url, the AWS access portal URL: %w", block, o.Path, errkind.Invalid)
		}
	}
	if s.Region == "" {
		if s.Region, _ = f.Get(block, "sso_region"); s.Region == "" {
			return nil, fmt.Errorf("no [%s] block with sso_region in %s yet: give --sso-region, the region of IAM Identity Center: %w", block, o.Path, errkind.Invalid)
		}
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	region := o.Region
	if region == "" {
		region = s.Region
	}
	res := &Result{Path: o.Path, Assignments: []Assignment{}}
	d := Desired{Session: s}
	tokenPath, err := o.TokenPath(s.Name)
	if err != nil {
		return nil, fmt.Errorf("find the cached SSO token: %w", err)
	}
	token, err := ReadToken(tokenPath, s, o.Now)
	switch {
	case errors.Is(err, ErrNotSignedIn):
		d.KeepProfiles = true
		res.NotSignedIn = err.Error()
	case err != nil:
		return nil, err
	default:
		res.SignedIn = true
		if res.Assignments, err = ListAssignments(ctx, o.Portal(s.Region), token); err != nil {
			return nil, err
		}
		d.Profiles = Profiles(res.Assignments, region, o.Output)
	}
	if res.Changes, err = f.Apply(d); err != nil {
		return nil, fmt.Errorf("update %s: %w", o.Path, err)
	}
	data := f.Bytes()
	res.Diff = Diff(o.Path, o.Path, old, data)
	if o.DryRun || res.Diff == "" {
		return res, nil
	}
	if res.Backup, err = Write(o.Path, data, o.Now); err != nil {
		return nil, err
	}
	res.Written = true
	return res, nil
}
