package artifact

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/store"
)

// VersionInfo is one entry of Versions.
type VersionInfo struct {
	Version string    `json:"version"`
	Created time.Time `json:"created"`
	Regions []string  `json:"regions"`
}

// Versions lists the versions of project found in any reachable region,
// in ascending version order. Unreachable regions are reported in err
// together with the partial list.
func (c *Client) Versions(ctx context.Context, project string) ([]VersionInfo, error) {
	if err := c.checkRegions(); err != nil {
		return nil, err
	}
	if err := ValidateProject(project); err != nil {
		return nil, err
	}
	lists := make([][]store.Info, len(c.Regions))
	errs := make([]error, len(c.Regions))
	parallel(len(c.Regions), func(i int) {
		lists[i], errs[i] = c.Regions[i].Store.List(ctx, project+"/")
	})
	byVersion := map[string]*VersionInfo{}
	var failed []*RegionError
	for i, list := range lists {
		if errs[i] != nil {
			failed = append(failed, &RegionError{Region: c.Regions[i].Name, Err: errs[i]})
			continue
		}
		for _, obj := range list {
			rest := strings.TrimPrefix(obj.Key, project+"/")
			v, file, ok := strings.Cut(rest, "/")
			if !ok || file != "manifest.json" {
				continue
			}
			if _, err := ParseVersion(v); err != nil {
				// Not written by stage: a listed name is outside input.
				c.log().Debug("skipping a key that is not a version", "region", c.Regions[i].Name, "key", obj.Key)
				continue
			}
			vi := byVersion[v]
			if vi == nil {
				vi = &VersionInfo{Version: v, Created: obj.Modified.UTC()}
				byVersion[v] = vi
			}
			vi.Regions = append(vi.Regions, c.Regions[i].Name)
			if obj.Modified.Before(vi.Created) {
				vi.Created = obj.Modified.UTC()
			}
		}
	}
	out := make([]VersionInfo, 0, len(byVersion))
	for _, vi := range byVersion {
		out = append(out, *vi)
	}
	sort.Slice(out, func(i, j int) bool { return CompareVersions(out[i].Version, out[j].Version) < 0 })
	if len(failed) == len(c.Regions) {
		return nil, &MultiError{Op: "list versions of " + project, Errors: failed}
	}
	if len(failed) > 0 {
		return out, &MultiError{Op: "list versions of " + project, Errors: failed}
	}
	return out, nil
}

// RegionPresence says whether a region holds a version.
type RegionPresence struct {
	Name    string `json:"name"`
	Present bool   `json:"present"`
	Error   string `json:"error,omitempty"`
	// Signature is the signature status of this region's manifest.
	Signature string `json:"signature,omitempty"`
	Kind      string `json:"error_kind,omitempty"` // see KindOf
	err       error
}

// Err is the error behind Error.
func (p RegionPresence) Err() error { return p.err }

// VersionDetails is what Info returns.
type VersionDetails struct {
	Manifest
	Latest           string           `json:"latest"`
	LatestPrerelease string           `json:"latest_prerelease,omitempty"`
	Regions          []RegionPresence `json:"regions"`
	// SignatureStatus is that of the manifest shown: with trusted keys, the
	// first region's that verifies, else the first region's.
	SignatureStatus SignatureInfo `json:"signature_status"`
}

// Info returns the manifest of project at version ("latest" and
// "latest-prerelease" allowed), the project's latest versions and which
// regions hold it.
func (c *Client) Info(ctx context.Context, project, version string) (*VersionDetails, error) {
	version, err := c.checkRef(project, version)
	if err != nil {
		return nil, err
	}
	latest, latestErrs := c.highest(ctx, project, Latest)
	pre, preErrs := c.highest(ctx, project, LatestPrerelease)
	want := version
	switch {
	case version == Latest && latest == "":
		return nil, downloadError(project, version, latestErrs)
	case version == Latest:
		want = latest
	case version == LatestPrerelease && pre == "":
		return nil, downloadError(project, version, preErrs)
	case version == LatestPrerelease:
		want = pre
	}
	d := &VersionDetails{Latest: latest, LatestPrerelease: pre}
	manifests := make([]*Manifest, len(c.Regions))
	errs := make([]error, len(c.Regions))
	parallel(len(c.Regions), func(i int) {
		m, err := readManifest(ctx, c.Regions[i].Store, project, want)
		if err == nil {
			manifests[i] = &m
		}
		errs[i] = err
	})
	var failed []*RegionError
	for i, r := range c.Regions {
		p := RegionPresence{Name: r.Name, Present: manifests[i] != nil}
		if errs[i] != nil && !errors.Is(errs[i], store.ErrNotFound) {
			p.Error, p.Kind, p.err = errs[i].Error(), KindOf(errs[i]), errs[i]
		}
		if errs[i] != nil {
			failed = append(failed, &RegionError{Region: r.Name, Err: errs[i]})
		}
		if manifests[i] != nil {
			sig := checkSignature(manifests[i], c.TrustedKeys)
			p.Signature = sig.Status
			if d.Manifest.SHA256 == "" || sig.Status == SignatureVerified && d.SignatureStatus.Status != SignatureVerified {
				d.Manifest, d.SignatureStatus = *manifests[i], sig
			}
		}
		d.Regions = append(d.Regions, p)
	}
	if d.Manifest.SHA256 == "" {
		return nil, downloadError(project, want, failed)
	}
	return d, nil
}

// highest returns the highest value of the named pointer among regions;
// regions disagree only while a stage is in progress or after a partial one.
func (c *Client) highest(ctx context.Context, project, name string) (string, []*RegionError) {
	vals := make([]string, len(c.Regions))
	errs := make([]error, len(c.Regions))
	parallel(len(c.Regions), func(i int) {
		vals[i], errs[i] = readPointer(ctx, c.Regions[i], project, name)
	})
	best := ""
	var failed []*RegionError
	for i, v := range vals {
		if errs[i] != nil {
			failed = append(failed, &RegionError{Region: c.Regions[i].Name, Err: errs[i]})
			continue
		}
		if best == "" || (name == Latest && compareLatest(v, best) > 0) || (name != Latest && CompareVersions(v, best) > 0) {
			best = v
		}
	}
	return best, failed
}

// Exists reports whether any region holds project at version. It answers
// false only when every region answered; otherwise it returns an error.
func (c *Client) Exists(ctx context.Context, project, version string) (bool, error) {
	if err := c.checkRegions(); err != nil {
		return false, err
	}
	if err := ValidateProject(project); err != nil {
		return false, err
	}
	if _, err := ParseVersion(version); err != nil {
		return false, err
	}
	found := make([]bool, len(c.Regions))
	errs := make([]error, len(c.Regions))
	parallel(len(c.Regions), func(i int) {
		_, err := c.Regions[i].Store.Stat(ctx, manifestKey(project, version))
		found[i] = err == nil
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			errs[i] = err
		}
	})
	var failed []*RegionError
	for i, ok := range found {
		if ok {
			return true, nil
		}
		if errs[i] != nil {
			failed = append(failed, &RegionError{Region: c.Regions[i].Name, Err: errs[i]})
		}
	}
	if len(failed) > 0 {
		return false, &MultiError{Op: fmt.Sprintf("look up %s %s", project, version), Errors: failed}
	}
	return false, nil
}
