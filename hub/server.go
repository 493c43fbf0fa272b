// Package hub is berth's control plane: an HTTP JSON API (and later the web
// UI) over the hub database. It holds who may do what; artifact bytes never
// pass through it.
package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"

	"github.com/berth-dev/berth/access"
	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/hub/db"
	"github.com/berth-dev/berth/hub/secrets"
	"github.com/berth-dev/berth/hub/web"
)

// Server serves the hub's API.
type Server struct {
	DB  *db.DB
	Log *slog.Logger
	// Secrets seals and opens the secrets the database keeps.
	Secrets *secrets.Box
	// SetupCode, when set, lets the first user be created through the
	// page GET /setup?code=... (which signs the browser in) or POST
	// /api/v1/setup (which answers an API token); it is accepted only while
	// there are no users.
	SetupCode string
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// TokenTTL is the lifetime of new API tokens (90 days when zero).
	TokenTTL time.Duration

	// PublicURL is the address people reach the hub at, such as
	// https://berth.example.com: the base of OIDC redirect and approval
	// links. An https PublicURL makes cookies Secure (TLS ending at a
	// proxy). Empty: links are built from the request's Host.
	PublicURL string
	// OIDC, when set, enables sign-in with an OpenID Connect provider.
	OIDC *OIDCConfig
	// SessionTTL is a browser session's absolute lifetime (7 days when
	// zero); SessionIdle ends it earlier when unused (8 hours when zero).
	SessionTTL, SessionIdle time.Duration
	// LoginRequestTTL is how long a berth login approval stays open (10
	// minutes when zero); LoginPollInterval is how often the CLI asks
	// (2 seconds when zero).
	LoginRequestTTL, LoginPollInterval time.Duration

	// FailedAuthLimit is how many failed sign-ins (setup codes, OIDC
	// callbacks, tokens, poll secrets) an address may make per minute, with
	// as many at once, before it is answered 429 (10 when zero).
	FailedAuthLimit int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For header
	// names the client (see forwardedFor); empty: the TCP peer is the
	// client.
	TrustedProxies []netip.Prefix

	authOnce sync.Once
	auth     *authState

	// AWS holds the credentials of AWSPrincipal, the ARN the hub runs as
	// in AWS, which AWS data planes trust (see dataplanes.go).
	AWS aws.Config

	// awsHTTP is built once: see (*Server).awsHTTP.
	awsHTTPOnce   sync.Once
	awsHTTPClient aws.HTTPClient
	AWSPrincipal  string
	// TemplateURL is where this berth's bootstrap template is published on
	// S3, for CloudFormation quick-create links.
	TemplateURL string

	// Access decides just-in-time access requests; nil when the hub was
	// started without a catalog and Identity Center (hub/access.go).
	Access *access.Engine

	// VersionsFresh is how old a project's version index may be before a
	// versions page lists the stores again, in the background (1 minute
	// when zero); versionIdx is this replica's state of it (versionindex.go).
	VersionsFresh time.Duration
	versionIdx    versionIndex
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Server) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// NewSetupCode returns a random one-time code for the first-start link.
func NewSetupCode() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// route is one API operation; the router and the OpenAPI document are
// both built from the list, so they cannot disagree.
type route struct {
	method, path, summary string
	public                bool
	handle                func(s *Server, w http.ResponseWriter, r *http.Request, u *db.User) error
}

func routes() []route {
	return []route{
		{"GET", "/healthz", "Liveness: the process serves requests", true, (*Server).healthz},
		{"GET", "/readyz", "Readiness: the database answers at this berth's schema version", true, (*Server).readyz},
		{"GET", "/api/v1/openapi.json", "This document", true, (*Server).openapi},
		{"POST", "/api/v1/setup", "First start: create the first user with the one-time setup code; returns an API token", true, (*Server).setup},
		{"POST", "/api/v1/login-requests", "berth login: open a request for a browser's approval; returns its approval link, user code and poll secret (limited per address)", true, (*Server).createLoginRequest},
		{"POST", "/api/v1/login-requests/{id}/token", "berth login: poll with the poll secret; pending, or the new API token once approved (shown once)", true, (*Server).loginRequestToken},
		{"GET", "/api/v1/me", "The signed-in user", false, (*Server).me},
		{"POST", "/api/v1/tokens", "Create an API token for the signed-in user; the token is shown once", false, (*Server).createToken},
		{"DELETE", "/api/v1/tokens/{id}", "Revoke one of the signed-in user's tokens", false, (*Server).revokeToken},
		{"POST", "/api/v1/users", "Add a user to the organisation and return its first API token, shown once (organisation admins)", false, (*Server).createUser},
		{"POST", "/api/v1/dataplanes", "Register a data plane (organisation admins): kind s3compat (its identities are checked, then sealed) or aws (the hub makes a sealed external ID)", false, (*Server).createAnyDataPlane},
		{"GET", "/api/v1/dataplanes", "The organisation's data planes, without secrets", false, (*Server).listDataPlanes},
		{"GET", "/api/v1/dataplanes/{dataplane}/bootstrap", "How to bootstrap an AWS data plane's account: template, aws cloudformation deploy command, quick-create link (organisation admins)", false, (*Server).bootstrapInstructions},
		{"POST", "/api/v1/dataplanes/{dataplane}/jobs", "Queue a background job on an AWS data plane: check, plan, status or drift (organisation admins)", false, (*Server).createJob},
		{"GET", "/api/v1/dataplanes/{dataplane}/jobs", "A data plane's latest jobs, newest first (organisation admins)", false, (*Server).listJobs},
		{"GET", "/api/v1/jobs/{id}", "A job's status, events, result and failure reason (organisation admins)", false, (*Server).getJob},
		{"POST", "/api/v1/jobs/{id}/approve", "Approve a plan job: queues the deploy job that applies exactly its change sets (organisation admins)", false, (*Server).approveJob},
		{"GET", "/api/v1/org/settings", "The organisation's settings (organisation admins)", false, (*Server).orgSettings},
		{"PUT", "/api/v1/org/settings", "Change the organisation's settings: enforce_own_dataplanes (organisation admins)", false, (*Server).putOrgSettings},
		{"POST", "/api/v1/projects", "Create a project on a data plane (organisation admins)", false, (*Server).createProject},
		{"PUT", "/api/v1/projects/{project}/members/{email}", "Give a user a role in a project: admin, writer or reader (project admins)", false, (*Server).setMember},
		{"GET", "/api/v1/projects/{project}/versions", "A project's versions, oldest first, with the regions that hold each; limit, cursor and order=newest page them, with the latest pointers (project members)", false, (*Server).versions},
		{"GET", "/api/v1/projects/{project}/versions/{version}", "A version's manifest, metadata, signature status and regions; latest and latest-prerelease allowed (project members)", false, (*Server).versionInfo},
		{"POST", "/api/v1/projects/{project}/versions/{version}/refresh", "Re-read a version in every region into the hub's version index, as the CLI does after a stage through the hub; the hub indexes what it finds, or drops a version no region holds (project writers)", false, (*Server).refreshVersion},
		{"GET", "/api/v1/projects/{project}/versions/{version}/download", "A presigned download link of the version's file (?file=NAME), valid 15 minutes, signed with a reader session of the project (project members)", false, (*Server).downloadLink},
		{"GET", "/api/v1/audit", "Audit log entries, filtered by actor, action, object, outcome, since, until; format=jsonl exports (organisation admins)", false, (*Server).auditLog},
		{"POST", "/api/v1/projects/{project}/credentials", "Short-lived credentials for one project and role (read or write), narrowed to its prefix", false, (*Server).credentials},
		{"GET", "/api/v1/organisation", "The organisation the request works in (header Berth-Organisation, else the session's selection, else the user's first) and the user's role in it", false, (*Server).organisation},
		{"GET", "/api/v1/organisations", "The signed-in user's organisations with its role in each, and which one the request works in", false, (*Server).listOrganisations},
		{"POST", "/api/v1/organisations", "Create an organisation; the caller becomes its admin (admins of an organisation on this hub)", false, (*Server).createOrganisation},
		{"PUT", "/api/v1/session/organisation", "Select the organisation a browser session works in (the web UI's switcher); API clients send the Berth-Organisation header instead", false, (*Server).selectSessionOrganisation},
		{"GET", "/api/v1/projects", "The projects the signed-in user may see, with its role in each", false, (*Server).listProjects},
		{"GET", "/api/v1/projects/{project}", "A project's settings (description, trusted keys) and members (project members)", false, (*Server).projectInfo},
		{"PATCH", "/api/v1/projects/{project}", "Change a project's description and trusted_keys (minisign public keys the hub checks signatures against); name, data plane and prefix are fixed (project admins)", false, (*Server).patchProject},
		{"GET", "/api/v1/projects/{project}/settings", "A project's settings: data plane, prefix, description, trusted keys (project members)", false, (*Server).projectSettings},
		{"GET", "/api/v1/tokens", "The signed-in user's API tokens with last use and expiry (never the tokens)", false, (*Server).listTokens},

		{"POST", "/api/v1/access/requests", "Ask for an escalation: account, permission_set, duration, reason; approvers are notified", false, (*Server).createAccessRequest},
		{"GET", "/api/v1/access/requests", "Access requests: mine=1 the caller's, pending=1 those the caller may decide; both by default", false, (*Server).listAccessRequests},
		{"POST", "/api/v1/access/requests/{id}/approve", "Approve a pending request (its escalation's approvers) and create the assignment", false, decideAccess("approve")},
		{"POST", "/api/v1/access/requests/{id}/deny", "Deny a pending request (approvers, or the requester to withdraw it)", false, decideAccess("deny")},
		{"POST", "/api/v1/access/requests/{id}/revoke", "End a request early (its requester or approvers); the assignment goes when no other request covers it", false, decideAccess("revoke")},
		{"GET", "/api/v1/access/whoami", "The caller's Identity Store user, groups, eligible escalations and active grants with time left", false, (*Server).accessWhoAmI},
	}
}

// Handler returns the hub's HTTP handler: the API of routes(), answering
// JSON, and the HTML pages of pages(). A route that is not public needs a
// bearer token or a session cookie; a cookie-authenticated unsafe request
// also needs the session's CSRF token (see authorize).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	m := &metrics{requests: map[metricKey]*metricValue{}}
	rts := append(routes(), route{"GET", "/metrics", "Prometheus metrics", true, nil})
	register := func(rt route, page bool) {
		handle := rt.handle
		if handle == nil {
			handle = func(s *Server, w http.ResponseWriter, r *http.Request, u *db.User) error {
				return s.metricsHandler(m)(w, r, u)
			}
		}
		fail := s.writeError
		if page {
			fail = s.writePageError
		}
		pattern := rt.method + " " + rt.path
		mux.HandleFunc(pattern, func(w0 http.ResponseWriter, r *http.Request) {
			w := &statusRecorder{ResponseWriter: w0}
			start := time.Now()
			defer func() { m.observe(pattern, w.code, time.Since(start)) }()
			var u *db.User
			if !rt.public {
				var err error
				if u, r, err = s.authorize(w, r); err != nil {
					fail(w, r, err)
					return
				}
			}
			if err := handle(s, w, r, u); err != nil {
				fail(w, r, err)
			}
		})
	}
	for _, rt := range rts {
		register(rt, false)
	}
	for _, rt := range pages() {
		register(rt, true)
	}
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, fmt.Errorf("no API operation %s %s: %w", r.Method, r.URL.Path, errkind.NotFound))
	})
	mux.Handle("/", web.New(mux, s, web.Paths{SignIn: "/signin", SignOut: "/auth/logout"})) // the web UI, a client of mux
	return s.withRequestID(s.withClientIP(withSecurityHeaders(mux)))
}

type ctxKey int

const (
	requestIDKey ctxKey = iota
	clientIPKey
)

// withRequestID gives every request an id, returned in X-Request-Id and
// named in logs and internal errors.
func (s *Server) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		id := hex.EncodeToString(b)
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

func requestID(r *http.Request) string {
	id, _ := r.Context().Value(requestIDKey).(string)
	return id
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request, _ *db.User) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ *db.User) error {
	v, err := s.DB.SchemaVersion(r.Context())
	if err != nil {
		return fmt.Errorf("database: %w: %w", err, errkind.Unavailable)
	}
	if v != db.LatestVersion() {
		return fmt.Errorf("database schema is at version %d, this berth needs %d: %w", v, db.LatestVersion(), errkind.Unavailable)
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "database": s.DB.Dialect.String(), "schema_version": v})
	return nil
}

// decode reads a JSON body of at most 64 KiB with no unknown fields.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("read request body: %w: %w", err, errkind.Invalid)
	}
	return nil
}

type tokenOut struct {
	ID      int64     `json:"id"`
	Name    string    `json:"name"`
	Token   string    `json:"token,omitempty"` // only in the answer that creates it
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

func (s *Server) issueToken(ctx context.Context, userID int64, name string) (*tokenOut, error) {
	ttl := s.TokenTTL
	if ttl == 0 {
		ttl = 90 * 24 * time.Hour
	}
	token, rec, err := newToken(userID, name, s.now(), ttl)
	if err != nil {
		return nil, err
	}
	if err := s.DB.CreateToken(ctx, rec); err != nil {
		return nil, err
	}
	return &tokenOut{ID: rec.ID, Name: name, Token: token, Created: rec.Created, Expires: rec.Expires}, nil
}

func (s *Server) setup(w http.ResponseWriter, r *http.Request, _ *db.User) error {
	var in struct {
		Code  string `json:"code"`
		Email string `json:"email"`
		Name  string `json:"name"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := s.checkSetupCode(r, in.Code); err != nil {
		return err
	}
	if err := validEmail(in.Email); err != nil {
		return err
	}
	u, err := s.DB.CreateFirstUser(r.Context(), in.Email, in.Name, "default")
	if err != nil {
		return err
	}
	t, err := s.issueToken(r.Context(), u.ID, "setup")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"user": userOut(u), "token": t})
	return nil
}

func validEmail(e string) error {
	at := strings.LastIndex(e, "@")
	if at < 1 || at == len(e)-1 || len(e) > 254 || strings.ContainsAny(e, " \t\r\n<>") {
		return fmt.Errorf("email %q: want an address such as ana@example.com: %w", truncate(e, 64), errkind.Invalid)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func userOut(u *db.User) map[string]any {
	return map[string]any{"id": u.ID, "email": u.Email, "name": u.Name, "created": u.Created}
}

func (s *Server) me(w http.ResponseWriter, _ *http.Request, u *db.User) error {
	writeJSON(w, http.StatusOK, userOut(u))
	return nil
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, u *db.User) (err error) {
	var in struct {
		Name string `json:"name"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	defer func() { s.audit(r, u, "token.create", "token/"+truncate(in.Name, 100), err) }()
	if in.Name == "" || len(in.Name) > 100 {
		return inField("name", fmt.Errorf("name: give the token a name of 1 to 100 characters, such as \"ci\": %w", errkind.Invalid))
	}
	t, err := s.issueToken(r.Context(), u.ID, in.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, t)
	return nil
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, u *db.User) (err error) {
	defer func() { s.audit(r, u, "token.revoke", "token/"+truncate(r.PathValue("id"), 20), err) }()
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return fmt.Errorf("token id %q: want a number: %w", truncate(r.PathValue("id"), 32), errkind.Invalid)
	}
	if err := s.DB.RevokeToken(r.Context(), u.ID, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// openapi describes the routes (OpenAPI 3.1).
func (s *Server) openapi(w http.ResponseWriter, _ *http.Request, _ *db.User) error {
	writeJSON(w, http.StatusOK, OpenAPI())
	return nil
}

// OpenAPI returns the API's description, built from the same route list as
// the router.
func OpenAPI() map[string]any {
	errResp := map[string]any{"description": "error", "content": map[string]any{"application/json": map[string]any{
		"schema": map[string]any{"$ref": "#/components/schemas/Error"}}}}
	paths := map[string]any{}
	for _, rt := range routes() {
		op := map[string]any{"summary": rt.summary, "responses": map[string]any{"2XX": map[string]any{"description": "success"}, "default": errResp}}
		if rt.public {
			op["security"] = []any{}
		}
		item, _ := paths[rt.path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[rt.path] = item
		}
		item[strings.ToLower(rt.method)] = op
	}
	return map[string]any{
		"openapi":  "3.1.0",
		"info":     map[string]any{"title": "berth hub", "version": "1"},
		"paths":    paths,
		"security": []any{map[string]any{"token": []any{}}, map[string]any{"session": []any{}}},
		"components": map[string]any{
			"securitySchemes": map[string]any{
				"token":   map[string]any{"type": "http", "scheme": "bearer", "description": "an API token, berth_..."},
				"session": map[string]any{"type": "apiKey", "in": "cookie", "name": SessionCookie, "description": "a browser session; unsafe methods also need its CSRF token in the X-CSRF-Token header"}},
			"schemas": map[string]any{"Error": map[string]any{"type": "object", "properties": map[string]any{"error": map[string]any{
				"type": "object", "properties": map[string]any{
					"code":    map[string]any{"type": "string", "enum": []string{"invalid", "unauthenticated", "forbidden", "not_found", "conflict", "too_many", "unavailable"}},
					"message": map[string]any{"type": "string"},
					"field":   map[string]any{"type": "string", "description": "the request field the error is about, when known"}}}}}},
		},
	}
}

// awsHTTP is the one HTTP client the hub's STS and S3 clients for
// S3-compatible data planes share. A client per request would open a
// connection per call and leave it idle: thousands under load (bench/hubload).
func (s *Server) awsHTTP() aws.HTTPClient {
	s.awsHTTPOnce.Do(func() { s.awsHTTPClient = awshttp.NewBuildableClient() })
	return s.awsHTTPClient
}
