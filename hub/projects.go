package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/dataplane"
	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/hub/db"
	"github.com/berth-dev/berth/policy"
)

// s3CompatSettings is what the hub keeps in clear about an S3-compatible
// data plane; the identities' secret keys are sealed beside it.
type s3CompatSettings struct {
	Endpoints []dataplane.Endpoint `json:"endpoints"`
	Bucket    string               `json:"bucket"`
	Prefix    string               `json:"prefix"`
	Writer    string               `json:"writer_access_key_id"`
	Reader    string               `json:"reader_access_key_id"`
}

type keyPair struct {
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
}

// credentialTTL is how long vended credentials live.
const credentialTTL = time.Hour

func (s *Server) orgAdmin(ctx context.Context, u *db.User) (*db.Organisation, error) {
	org, err := s.userOrg(ctx, u)
	if err != nil {
		return nil, err
	}
	if org.Role != "admin" {
		return nil, fmt.Errorf("only an admin of organisation %s may do this: %w", org.Name, errkind.PermissionDenied)
	}
	return org, nil
}

func (s *Server) audit(r *http.Request, u *db.User, action, object string, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
		if k := errkind.Of(err); k != nil {
			outcome += ": " + k.Error()
		}
	}
	actor := "anonymous"
	var orgID int64
	if u != nil {
		actor = u.Email
		if org, err := s.userOrg(context.WithoutCancel(r.Context()), u); err == nil {
			orgID = org.ID // the organisation whose admins may read the entry
		}
	}
	e := &db.AuditEntry{Actor: actor, RequestID: requestID(r), Action: action, Object: object, Outcome: outcome, SourceIP: clientIP(r), OrgID: orgID}
	if aerr := s.DB.AppendAudit(context.WithoutCancel(r.Context()), e); aerr != nil {
		s.log().Error("audit log append failed", "action", action, "object", object, "err", aerr)
	}
}

func (s *Server) createDataPlane(w http.ResponseWriter, r *http.Request, u *db.User) (err error) {
	var in struct {
		Name      string   `json:"name"`
		Kind      string   `json:"kind"`
		Endpoints []string `json:"endpoints"` // NAME=URL, in download order
		Bucket    string   `json:"bucket"`
		Prefix    string   `json:"prefix"`
		Writer    keyPair  `json:"writer"`
		Reader    keyPair  `json:"reader"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	defer func() { s.audit(r, u, "dataplane.create", "dataplane/"+truncate(in.Name, 64), err) }()
	org, err := s.orgAdmin(r.Context(), u)
	if err != nil {
		return err
	}
	if in.Kind != "s3compat" {
		return fmt.Errorf("kind %q: the hub registers S3-compatible data planes (kind s3compat) so far: %w", truncate(in.Kind, 32), errkind.Invalid)
	}
	if err := artifact.ValidateProject(in.Name); err != nil {
		return inField("name", fmt.Errorf("data plane name: %w", err))
	}
	st := s3CompatSettings{Bucket: in.Bucket, Prefix: strings.Trim(in.Prefix, "/"), Writer: in.Writer.AccessKeyID, Reader: in.Reader.AccessKeyID}
	if len(in.Endpoints) == 0 {
		return fmt.Errorf("endpoints: give one NAME=URL per region: %w", errkind.Invalid)
	}
	for _, e := range in.Endpoints {
		ep, err := dataplane.ParseEndpoint(e)
		if err != nil {
			return fmt.Errorf("endpoints: %w: %w", err, errkind.Invalid)
		}
		st.Endpoints = append(st.Endpoints, ep)
	}
	if err := (policy.Params{Bucket: st.Bucket, Prefix: st.Prefix}).Validate(); err != nil || st.Bucket == "" {
		return fmt.Errorf("bucket and prefix: %v: %w", err, errkind.Invalid)
	}
	for role, kp := range map[string]keyPair{"writer": in.Writer, "reader": in.Reader} {
		if kp.AccessKeyID == "" || kp.SecretAccessKey == "" {
			return fmt.Errorf("%s: give access_key_id and secret_access_key of the %s identity (berth dataplane deploy --endpoint prints them): %w", role, role, errkind.Invalid)
		}
	}
	// Check before saving: each identity can open a session in each region.
	probe, err := policy.SessionPolicy(policy.SessionParams{Buckets: []string{st.Bucket}, Prefix: path.Join(st.Prefix, "berth-check")})
	if err != nil {
		return fmt.Errorf("%w: %w", err, errkind.Invalid)
	}
	for _, ep := range st.Endpoints {
		for role, kp := range map[string]keyPair{"writer": in.Writer, "reader": in.Reader} {
			_, err := vend(r.Context(), vendInput{Region: ep.Name, Endpoint: ep.URL, AccessKeyID: kp.AccessKeyID, SecretKey: kp.SecretAccessKey,
				SessionName: "berth-hub-check", Policy: probe, Duration: 15 * time.Minute, HTTP: s.awsHTTP()})
			if err != nil {
				return fmt.Errorf("check the %s identity in %s: %w", role, ep.Name, err)
			}
		}
	}
	sealed := map[string]string{}
	for _, f := range []struct{ name, secret string }{{"writer", in.Writer.SecretAccessKey}, {"reader", in.Reader.SecretAccessKey}} {
		v, err := s.Secrets.Seal(r.Context(), []byte(f.secret), "dataplane/"+in.Name+"/"+f.name)
		if err != nil {
			return err
		}
		sealed[f.name] = v
	}
	settings, _ := json.Marshal(st)
	secretsJSON, _ := json.Marshal(sealed)
	p := &db.DataPlane{OrgID: org.ID, Name: in.Name, Kind: in.Kind, Settings: string(settings), Secrets: string(secretsJSON)}
	if err := s.DB.CreateDataPlane(r.Context(), p); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": p.ID, "name": p.Name, "kind": p.Kind, "endpoints": st.Endpoints, "bucket": st.Bucket, "prefix": st.Prefix})
	return nil
}

func (s *Server) createProject(w http.ResponseWriter, r *http.Request, u *db.User) (err error) {
	var in struct {
		Name      string `json:"name"`
		DataPlane string `json:"dataplane"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	defer func() { s.audit(r, u, "project.create", "project/"+truncate(in.Name, 64), err) }()
	org, err := s.orgAdmin(r.Context(), u)
	if err != nil {
		return err
	}
	if err := artifact.ValidateProject(in.Name); err != nil {
		return inField("name", err)
	}
	dp, err := s.DB.DataPlaneByName(r.Context(), org.ID, in.DataPlane)
	if err != nil {
		return inField("dataplane", fmt.Errorf("dataplane %q: %w", truncate(in.DataPlane, 64), err))
	}
	if err := s.ownDataPlane(r.Context(), org, dp); err != nil {
		return err
	}
	var st s3CompatSettings
	if err := json.Unmarshal([]byte(dp.Settings), &st); err != nil {
		return fmt.Errorf("read data plane %s: %w", dp.Name, err)
	}
	p := &db.Project{OrgID: org.ID, Name: in.Name, DataPlaneID: dp.ID, Prefix: path.Join(st.Prefix, in.Name)}
	if err := s.DB.CreateProject(r.Context(), p, u.ID); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": p.ID, "name": p.Name, "dataplane": dp.Name, "prefix": p.Prefix})
	return nil
}

// project returns the named project of the request's organisation. A project
// of another organisation is "not found", never "forbidden": its existence
// is not the caller's business.
func (s *Server) project(ctx context.Context, u *db.User, name string) (*db.Project, string, error) {
	org, err := s.userOrg(ctx, u)
	if err != nil {
		return nil, "", err
	}
	p, err := s.DB.ProjectByName(ctx, org.ID, name)
	if err != nil {
		return nil, "", err
	}
	role, err := s.DB.ProjectRole(ctx, p.ID, u.ID)
	if errors.Is(err, errkind.NotFound) {
		if org.Role == "admin" {
			return p, "admin", nil
		}
		return nil, "", fmt.Errorf("project %s: %w", truncate(name, 64), errkind.NotFound)
	}
	return p, role, err
}

func (s *Server) setMember(w http.ResponseWriter, r *http.Request, u *db.User) (err error) {
	var in struct {
		Role string `json:"role"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	name, email := r.PathValue("project"), r.PathValue("email")
	defer func() {
		s.audit(r, u, "project.member.set", "project/"+truncate(name, 64)+"/member/"+truncate(email, 64)+"="+truncate(in.Role, 16), err)
	}()
	p, role, err := s.project(r.Context(), u, name)
	if err != nil {
		return err
	}
	if role != "admin" {
		return fmt.Errorf("only an admin of project %s may change its members: %w", p.Name, errkind.PermissionDenied)
	}
	switch in.Role {
	case "admin", "writer", "reader":
	default:
		return inField("role", fmt.Errorf("role %q: use admin, writer or reader: %w", truncate(in.Role, 16), errkind.Invalid))
	}
	member, err := s.DB.UserByEmail(r.Context(), email)
	if err != nil {
		return inField("email", err)
	}
	if err := s.DB.SetProjectMember(r.Context(), p.ID, member.ID, in.Role); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"project": p.Name, "email": member.Email, "role": in.Role})
	return nil
}

// regionCredentials are one region's vended credentials.
type regionCredentials struct {
	Region          string    `json:"region"`
	Endpoint        string    `json:"endpoint"`
	Bucket          string    `json:"bucket"`
	AccessKeyID     string    `json:"access_key_id"`
	SecretAccessKey string    `json:"secret_access_key"`
	SessionToken    string    `json:"session_token"`
	Expiration      time.Time `json:"expiration"`
}

func (s *Server) credentials(w http.ResponseWriter, r *http.Request, u *db.User) (err error) {
	var in struct {
		Role string `json:"role"` // read or write
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	name := r.PathValue("project")
	defer func() {
		s.audit(r, u, "credentials."+truncate(in.Role, 8), "project/"+truncate(name, 64), err)
	}()
	if in.Role != "read" && in.Role != "write" {
		return fmt.Errorf("role %q: use read or write: %w", truncate(in.Role, 16), errkind.Invalid)
	}
	p, role, err := s.project(r.Context(), u, name)
	if err != nil {
		return err
	}
	if in.Role == "write" && role == "reader" {
		return fmt.Errorf("%s is a reader of project %s and may not write: %w", u.Email, p.Name, errkind.PermissionDenied)
	}
	dp, err := s.DB.DataPlaneByID(r.Context(), p.DataPlaneID)
	if err != nil {
		return err
	}
	if err := s.projectDataPlaneAllowed(r.Context(), u, dp); err != nil {
		return err
	}
	if dp.Kind == "aws" {
		return s.awsCredentials(w, r, u, p, dp, in.Role)
	}
	var st s3CompatSettings
	var sealed map[string]string
	if err := errors.Join(json.Unmarshal([]byte(dp.Settings), &st), json.Unmarshal([]byte(dp.Secrets), &sealed)); err != nil {
		return fmt.Errorf("read data plane %s: %w", dp.Name, err)
	}
	identity, keyID := "reader", st.Reader
	if in.Role == "write" {
		identity, keyID = "writer", st.Writer
	}
	secret, err := s.Secrets.Open(r.Context(), sealed[identity], "dataplane/"+dp.Name+"/"+identity)
	if err != nil {
		return err
	}
	// S3-compatible data planes use one bucket name in every region.
	session, err := policy.SessionPolicy(policy.SessionParams{Buckets: []string{st.Bucket}, Prefix: p.Prefix})
	if err != nil {
		return fmt.Errorf("%w: %w", err, errkind.Invalid)
	}
	out := struct {
		Project     string              `json:"project"`
		Role        string              `json:"role"`
		Prefix      string              `json:"prefix"`
		StorePrefix string              `json:"store_prefix"`
		Regions     []regionCredentials `json:"regions"`
	}{Project: p.Name, Role: in.Role, Prefix: p.Prefix, StorePrefix: st.Prefix}
	for _, ep := range st.Endpoints {
		c, err := vend(r.Context(), vendInput{Region: ep.Name, Endpoint: ep.URL, AccessKeyID: keyID, SecretKey: string(secret),
			SessionName: sessionName(u.Email), Policy: session, Duration: credentialTTL, HTTP: s.awsHTTP()})
		if err != nil {
			return err
		}
		out.Regions = append(out.Regions, regionCredentials{Region: ep.Name, Endpoint: ep.URL, Bucket: st.Bucket,
			AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken, Expiration: c.Expires})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// sessionName is what the storage service's logs show for a vended session:
// berth- and the user, in the characters STS allows.
func sessionName(email string) string {
	var b strings.Builder
	b.WriteString("berth-")
	for _, r := range email {
		if b.Len() >= 64 {
			break
		}
		if r < 128 && (r == '=' || r == ',' || r == '.' || r == '@' || r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// createUser adds a user to the organisation, for people before OIDC sign-in
// lands and for automation (CI) accounts, and returns its first API token,
// shown once. A user who already exists (in another organisation) is only
// added as a member: they keep their tokens and get no new one, since a
// token is the user's, not the organisation's.
func (s *Server) createUser(w http.ResponseWriter, r *http.Request, u *db.User) (err error) {
	var in struct {
		Email string `json:"email"`
		Name  string `json:"name"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	defer func() { s.audit(r, u, "user.create", "user/"+truncate(in.Email, 64), err) }()
	org, err := s.orgAdmin(r.Context(), u)
	if err != nil {
		return err
	}
	if err := validEmail(in.Email); err != nil {
		return inField("email", err)
	}
	nu, err := s.DB.CreateUser(r.Context(), in.Email, in.Name)
	existing := errors.Is(err, errkind.Conflict)
	if existing {
		nu, err = s.DB.UserByEmail(r.Context(), in.Email)
	}
	if err != nil {
		return err
	}
	if err := s.DB.AddOrgMember(r.Context(), org.ID, nu.ID, "member"); err != nil {
		return inField("email", fmt.Errorf("%s in organisation %s: %w", nu.Email, org.Name, err))
	}
	if existing {
		writeJSON(w, http.StatusCreated, map[string]any{"user": userOut(nu), "organisation": org.Name, "existing": true,
			"note": fmt.Sprintf("%s already had an account: added to organisation %s; no new token was issued (they use theirs, with --org %s)", nu.Email, org.Name, org.Name)})
		return nil
	}
	t, err := s.issueToken(r.Context(), nu.ID, "created by "+u.Email)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"user": userOut(nu), "organisation": org.Name, "token": t})
	return nil
}

// auditLog lists audit entries for organisation admins, filtered by the
// query (actor, action, object prefix, outcome, since, until, after,
// limit), as JSON or, with format=jsonl, as JSON lines for export.
func (s *Server) auditLog(w http.ResponseWriter, r *http.Request, u *db.User) error {
	org, err := s.orgAdmin(r.Context(), u)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := db.AuditFilter{OrgID: org.ID, Actor: q.Get("actor"), Action: q.Get("action"), ObjectPrefix: q.Get("object"), Outcome: q.Get("outcome")}
	if f.Outcome != "" && f.Outcome != "ok" && f.Outcome != "error" {
		return fmt.Errorf("outcome %q: use ok or error: %w", truncate(f.Outcome, 16), errkind.Invalid)
	}
	for name, dst := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return fmt.Errorf("%s %q: want a time such as 2026-12-01T00:00:00Z: %w", name, truncate(v, 40), errkind.Invalid)
			}
			*dst = t
		}
	}
	for name, dst := range map[string]*int64{"after": &f.AfterID} {
		if v := q.Get(name); v != "" {
			if _, err := fmt.Sscan(v, dst); err != nil || *dst < 0 {
				return fmt.Errorf("%s %q: want an entry id: %w", name, truncate(v, 20), errkind.Invalid)
			}
		}
	}
	if v := q.Get("limit"); v != "" {
		if _, err := fmt.Sscan(v, &f.Limit); err != nil || f.Limit < 1 {
			return fmt.Errorf("limit %q: want a number from 1 to 1000: %w", truncate(v, 20), errkind.Invalid)
		}
	}
	entries, err := s.DB.SearchAudit(r.Context(), f)
	if err != nil {
		return err
	}
	if q.Get("format") == "jsonl" {
		w.Header().Set("Content-Type", "application/jsonl")
		enc := json.NewEncoder(w)
		for _, e := range entries {
			if err := enc.Encode(e); err != nil {
				return nil // the client went away
			}
		}
		return nil
	}
	if entries == nil {
		entries = []db.AuditEntry{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": entries})
	return nil
}
