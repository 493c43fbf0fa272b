package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/dataplane"
	"github.com/berth-dev/berth/hub/hubclient"
	"github.com/berth-dev/berth/pointer"
	"github.com/berth-dev/berth/store/s3store"
)

const (
	bucket  = "berth-releases"
	prefix  = "rel"
	project = "app"
)

// hubProc is a running `berth server` and the tokens set up on it.
type hubProc struct {
	URL    string
	proc   *proc
	admin  string // organisation admin's API token
	writer string // API token of a writer of the project
}

// setupCode matches the one-time code `berth server` prints on first start.
var setupCode = regexp.MustCompile(`"code":"([0-9a-f]{32})"`)

// codeWriter copies the server's stderr to its log line by line, hands the
// setup code to the benchmark and keeps it out of the log.
type codeWriter struct {
	log  io.Writer
	buf  []byte
	code chan string
}

func (w *codeWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := w.buf[:i+1]
		if m := setupCode.FindSubmatch(line); m != nil {
			select {
			case w.code <- string(m[1]):
			default:
			}
			line = setupCode.ReplaceAll(line, []byte(`"code":"(redacted by hubload)"`))
		}
		if _, err := w.log.Write(line); err != nil {
			return 0, err
		}
		w.buf = w.buf[i+1:]
	}
}

// startHub starts `berth server` on a free loopback port with its files in
// dataDir, waits until it is ready and returns it with the setup code.
func startHub(ctx context.Context, ps *procs, berth, dataDir, database, logPath string) (*hubProc, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args := []string{"server", "--listen", addr, "--data-dir", dataDir}
	if database != "" {
		args = append(args, "--database", database)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, "", err
	}
	cw := &codeWriter{log: logf, code: make(chan string, 1)}
	cmd := exec.Command(berth, args...)
	cmd.Env = append(os.Environ(), "HOME="+dataDir, "XDG_CONFIG_HOME="+dataDir, "XDG_DATA_HOME="+dataDir)
	cmd.Stderr = cw
	p, err := ps.start("berth server", cmd, logPath, syscall.SIGTERM)
	if err != nil {
		logf.Close()
		return nil, "", err
	}
	go func() { <-p.exited; logf.Close() }()
	h := &hubProc{URL: "http://" + addr, proc: p}
	if err := waitHTTP(ctx, p, h.URL+"/readyz", func(r *http.Response) bool { return r.StatusCode == http.StatusOK }); err != nil {
		return h, "", err
	}
	select {
	case code := <-cw.code:
		return h, code, nil
	case <-time.After(10 * time.Second):
		return h, "", errors.New("berth server printed no setup code: was its data directory used before?")
	}
}

// call sends one JSON request with token and decodes a 2xx answer into out.
func call(ctx context.Context, hc *http.Client, method, url, token string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, url, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, strings.TrimSpace(string(data)))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, url, err)
		}
	}
	return nil
}

// setupHub creates the first admin with the setup code, registers the MinIO
// data plane with its identities, creates the project and a writer of it,
// all through the API as an operator would.
func setupHub(ctx context.Context, hc *http.Client, h *hubProc, code string, regions []*minio, ids map[string]dataplane.Credentials) error {
	var created struct {
		Token struct{ Token string } `json:"token"`
	}
	if err := call(ctx, hc, "POST", h.URL+"/api/v1/setup", "", map[string]string{"code": code, "email": "admin@example.com"}, &created); err != nil {
		return fmt.Errorf("set up the first admin: %w", err)
	}
	h.admin = created.Token.Token
	var eps []string
	for _, m := range regions {
		eps = append(eps, m.Region+"="+m.Endpoint)
	}
	dp := map[string]any{"name": "minio", "kind": "s3compat", "endpoints": eps, "bucket": bucket, "prefix": prefix,
		"writer": map[string]string{"access_key_id": ids["writer"].AccessKeyID, "secret_access_key": ids["writer"].SecretAccessKey},
		"reader": map[string]string{"access_key_id": ids["reader"].AccessKeyID, "secret_access_key": ids["reader"].SecretAccessKey}}
	if err := call(ctx, hc, "POST", h.URL+"/api/v1/dataplanes", h.admin, dp, nil); err != nil {
		return fmt.Errorf("register the data plane: %w", err)
	}
	if err := call(ctx, hc, "POST", h.URL+"/api/v1/projects", h.admin, map[string]string{"name": project, "dataplane": "minio"}, nil); err != nil {
		return fmt.Errorf("create project: %w", err)
	}
	created.Token.Token = ""
	if err := call(ctx, hc, "POST", h.URL+"/api/v1/users", h.admin, map[string]string{"email": "ci@example.com"}, &created); err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	h.writer = created.Token.Token
	if err := call(ctx, hc, "PUT", h.URL+"/api/v1/projects/"+project+"/members/ci@example.com", h.admin, map[string]string{"role": "writer"}, nil); err != nil {
		return fmt.Errorf("add the writer: %w", err)
	}
	return nil
}

// deployDataPlane sets up berth's S3-compatible data plane on the MinIO
// servers (bucket, policies, a writer and a reader identity), as
// `berth dataplane deploy --endpoint` does, and returns the identities.
func deployDataPlane(ctx context.Context, regions []*minio) (map[string]dataplane.Credentials, error) {
	keep := func(context.Context, dataplane.Credentials) error { return nil } // the result has them
	in := dataplane.S3CompatInput{Bucket: bucket, Prefix: prefix, Identities: true, KeepCredentials: keep}
	for _, m := range regions {
		creds := aws.Credentials{AccessKeyID: m.AccessKey, SecretAccessKey: m.SecretKey}
		admin, err := dataplane.NewAdmin(m.Endpoint, m.Region, creds)
		if err != nil {
			return nil, err
		}
		s3c := s3.New(s3.Options{Region: m.Region, BaseEndpoint: aws.String(m.Endpoint), UsePathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, "")})
		in.Targets = append(in.Targets, dataplane.Target{Endpoint: dataplane.Endpoint{Name: m.Region, URL: m.Endpoint}, S3: s3c, Admin: admin})
	}
	plan, err := dataplane.PlanS3Compat(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("plan data plane: %w", err)
	}
	res, err := dataplane.ApplyS3Compat(ctx, plan)
	if err != nil {
		return nil, fmt.Errorf("deploy data plane: %w", err)
	}
	ids := map[string]dataplane.Credentials{}
	for _, c := range res.Credentials {
		ids[c.Role] = c
	}
	if ids["writer"].SecretAccessKey == "" || ids["reader"].SecretAccessKey == "" {
		return nil, errors.New("deploy data plane: no writer and reader identities were created")
	}
	return ids, nil
}

// stageVersions stages n small versions of the project with credentials
// the hub vends to the writer, as `berth stage` does after `berth login`.
func stageVersions(ctx context.Context, h *hubProc, n int, file string) error {
	hc := &hubclient.Client{URL: h.URL, Token: h.writer}
	g, err := hc.Credentials(ctx, project, "write")
	if err != nil {
		return fmt.Errorf("vend write credentials: %w", err)
	}
	c := &artifact.Client{Identity: "ci@example.com"}
	for _, r := range g.Regions {
		provider := aws.NewCredentialsCache(hc.Provider(g, r.Name))
		s3c := s3.New(s3.Options{Region: r.Name, BaseEndpoint: aws.String(r.Endpoint), UsePathStyle: true, Credentials: provider})
		st := s3store.New(s3c, r.Bucket, g.StorePrefix, s3store.Options{})
		c.Regions = append(c.Regions, artifact.Region{Name: r.Name, Store: st, Pointer: pointer.InStore{Store: st}})
	}
	versions := make(chan string)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for v := range versions {
				var err error
				// Parallel stages race for the latest pointer; a retry
				// settles it.
				for range 3 {
					if _, err = c.Stage(ctx, project, v, file, artifact.StageOptions{}); err == nil {
						break
					}
				}
				if err != nil {
					errs <- fmt.Errorf("stage %s %s: %w", project, v, err)
				}
			}
		}()
	}
	for i := range n {
		select {
		case versions <- fmt.Sprintf("1.%d.%d", i/100, i%100):
		case <-ctx.Done():
		}
	}
	close(versions)
	wg.Wait()
	close(errs)
	return <-errs // nil when none failed
}

// countVersions returns how many versions the hub lists for the project.
func countVersions(ctx context.Context, hc *http.Client, h *hubProc) (int, error) {
	var list struct {
		Versions []struct{ Version string } `json:"versions"`
		Warning  string                     `json:"warning"`
	}
	if err := call(ctx, hc, "GET", h.URL+"/api/v1/projects/"+project+"/versions", h.writer, nil, &list); err != nil {
		return 0, err
	}
	if list.Warning != "" {
		return 0, fmt.Errorf("list versions: %s", list.Warning)
	}
	return len(list.Versions), nil
}

// dataDirFor returns a fresh directory for one hub's own files.
func dataDirFor(work, name string) (string, error) {
	d := filepath.Join(work, "hub-"+name)
	return d, os.MkdirAll(d, 0o700)
}
