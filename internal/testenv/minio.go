package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// StartTimeout bounds how long a MinIO process may take to become healthy.
const StartTimeout = 30 * time.Second

// regionNames are handed out by StartRegions in order.
var regionNames = []string{
	"eu-west-1", "us-east-1", "ap-southeast-2", "eu-central-1",
	"us-west-2", "ap-northeast-1", "sa-east-1", "ca-central-1",
}

// MinIO is one running MinIO server process with a single-drive data
// directory, listening on loopback.
type MinIO struct {
	Endpoint  string // http://127.0.0.1:PORT
	Region    string
	AccessKey string
	SecretKey string
	Dir       string // data directory
	LogFile   string // server stdout and stderr, across restarts

	bin         string
	addr        string
	consoleAddr string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
}

// StartMinIO starts a MinIO server for region and waits until it is healthy.
// The process is killed and its files removed when the test ends.
func StartMinIO(t testing.TB, region string) *MinIO {
	t.Helper()
	bin := MinIOBinary(t)
	m := newMinIO(t, bin, region)
	if err := m.startFresh(); err != nil {
		t.Fatalf("start minio %s: %v\n%s", region, err, m.logTail())
	}
	return m
}

// StartRegions starts n MinIO servers in parallel, one per region, with
// realistic region names (eu-west-1, us-east-1, ap-southeast-2, ...). They
// share one root identity, as the regions of one service do for an admin.
func StartRegions(t testing.TB, n int) []*MinIO {
	t.Helper()
	if n > len(regionNames) {
		t.Fatalf("StartRegions: at most %d regions, asked for %d", len(regionNames), n)
	}
	bin := MinIOBinary(t)
	ms := make([]*MinIO, n)
	for i := range ms {
		ms[i] = newMinIO(t, bin, regionNames[i])
		ms[i].SecretKey = ms[0].SecretKey
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = m.startFresh()
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("start minio %s: %v\n%s", ms[i].Region, err, ms[i].logTail())
		}
	}
	return ms
}

func newMinIO(t testing.TB, bin, region string) *MinIO {
	t.Helper()
	tmp := t.TempDir()
	m := &MinIO{
		Region:    region,
		AccessKey: "berth",
		SecretKey: randomSecret(t),
		Dir:       filepath.Join(tmp, "data"),
		LogFile:   filepath.Join(tmp, "minio.log"),
		bin:       bin,
	}
	if err := os.Mkdir(m.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Registered after TempDir's own cleanup, so it runs before the
	// directory is removed.
	t.Cleanup(func() {
		m.Kill()
		if t.Failed() {
			t.Logf("minio %s (%s) log:\n%s", m.Region, m.Endpoint, m.logTail())
		}
	})
	return m
}

func randomSecret(t testing.TB) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// startFresh picks free ports and starts the server. Another process can
// grab a port between our probe and MinIO's listen, so it tries a few times.
func (m *MinIO) startFresh() error {
	var err error
	for range 3 {
		var ports []int
		ports, err = freePorts(2)
		if err != nil {
			return err
		}
		m.addr = fmt.Sprintf("127.0.0.1:%d", ports[0])
		m.consoleAddr = fmt.Sprintf("127.0.0.1:%d", ports[1])
		m.Endpoint = "http://" + m.addr
		if err = m.start(); err == nil {
			return nil
		}
		m.Kill()
		if tail := m.logTail(); !strings.Contains(tail, "address already in use") && !strings.Contains(tail, "port is already in use") {
			return err
		}
	}
	return err
}

func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func (m *MinIO) start() error {
	logf, err := os.OpenFile(m.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	fmt.Fprintf(logf, "=== %s: minio server %s --address %s\n", time.Now().Format(time.RFC3339Nano), m.Dir, m.addr)

	cmd := exec.Command(m.bin, "server", m.Dir, "--address", m.addr, "--console-address", m.consoleAddr)
	cmd.Env = append(environWithout("MINIO_"),
		"MINIO_ROOT_USER="+m.AccessKey,
		"MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_SITE_REGION="+m.Region,
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=1",
		// No web console: it listens on a second port that another test
		// process can take between our probe and its listen, and MinIO
		// then exits after it already answered its health check.
		"MINIO_BROWSER=off",
	)
	cmd.Stdout = logf
	cmd.Stderr = logf
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("exec %s: %w", m.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	m.mu.Lock()
	m.cmd, m.exited = cmd, exited
	m.mu.Unlock()
	return m.waitHealthy(exited)
}

func (m *MinIO) waitHealthy(exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	url := m.Endpoint + "/minio/health/live"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			// Live answers 200 before the object layer is up, saying so
			// only in this header; S3 calls would get 503 until then.
			if resp.StatusCode == http.StatusOK && resp.Header.Get("X-Minio-Server-Status") != "offline" {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("minio exited before it became healthy")
		case <-ctx.Done():
			return fmt.Errorf("minio not healthy at %s after %v", url, StartTimeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Kill stops the server with SIGKILL and waits for it to exit. The data
// directory stays, so Restart can bring the same server back.
func (m *MinIO) Kill() {
	m.mu.Lock()
	cmd, exited := m.cmd, m.exited
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// Restart starts the server again on the same ports and data directory.
func (m *MinIO) Restart(t testing.TB) {
	t.Helper()
	m.Kill()
	if err := m.start(); err != nil {
		t.Fatalf("restart minio %s: %v\n%s", m.Region, err, m.logTail())
	}
}

// Config returns an aws.Config with static credentials for this server.
// Clients built from it still need BaseEndpoint and path-style addressing;
// S3Client sets both.
func (m *MinIO) Config() aws.Config {
	return aws.Config{
		Region:       m.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
		BaseEndpoint: aws.String(m.Endpoint),
	}
}

// S3Client returns a client for this server. optFns adjust it, for example
// to shrink the retry budget in tests that expect a dead server.
func (m *MinIO) S3Client(t testing.TB, optFns ...func(*s3.Options)) *s3.Client {
	t.Helper()
	opts := append([]func(*s3.Options){func(o *s3.Options) {
		o.UsePathStyle = true
		o.BaseEndpoint = aws.String(m.Endpoint)
	}}, optFns...)
	return s3.NewFromConfig(m.Config(), opts...)
}

// CreateBucket creates bucket in this server's region.
func (m *MinIO) CreateBucket(t testing.TB, name string) {
	t.Helper()
	in := &s3.CreateBucketInput{Bucket: aws.String(name)}
	if m.Region != "us-east-1" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{
			LocationConstraint: types.BucketLocationConstraint(m.Region),
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := m.S3Client(t).CreateBucket(ctx, in); err != nil {
		t.Fatalf("create bucket %s on %s: %v", name, m.Region, err)
	}
}

// AWSEnv returns environment variables that point the aws CLI (or any SDK
// reading the environment) at this server, without touching the user's
// ~/.aws files.
func (m *MinIO) AWSEnv() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + m.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + m.SecretKey,
		"AWS_DEFAULT_REGION=" + m.Region,
		"AWS_REGION=" + m.Region,
		"AWS_ENDPOINT_URL=" + m.Endpoint,
		"AWS_CONFIG_FILE=" + os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_PAGER=",
	}
}

// logTail returns the end of the server log, enough to see why it failed.
func (m *MinIO) logTail() string {
	const max = 16 << 10
	b, err := os.ReadFile(m.LogFile)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if len(b) > max {
		b = append([]byte("...\n"), b[len(b)-max:]...)
	}
	return string(b)
}

// environWithout returns os.Environ minus variables starting with prefix.
func environWithout(prefix string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, prefix) {
			env = append(env, kv)
		}
	}
	return env
}

// SessionCredentials returns temporary credentials of this server's root
// identity narrowed by a session policy (an IAM policy document), from
// MinIO's STS AssumeRole: a caller that may do only what policy allows. One
// plain request, where creating a user through the admin API derives an
// argon2id key on both ends (2-3 s per user measured on a busy machine).
func (m *MinIO) SessionCredentials(t testing.TB, policy []byte) aws.CredentialsProvider {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := sts.NewFromConfig(m.Config(), func(o *sts.Options) { o.BaseEndpoint = aws.String(m.Endpoint) })
	in := &sts.AssumeRoleInput{
		RoleArn:         aws.String("arn:aws:iam::000000000000:role/berth-test"), // required by the SDK, ignored by MinIO
		RoleSessionName: aws.String("berth-test"),
		Policy:          aws.String(string(policy)),
		DurationSeconds: aws.Int32(3600),
	}
	out, err := c.AssumeRole(ctx, in)
	// MinIO reports itself healthy before its IAM subsystem is up.
	for err != nil && strings.Contains(err.Error(), "not initialized") && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
		out, err = c.AssumeRole(ctx, in)
	}
	if err != nil {
		t.Fatalf("assume role with a session policy on %s: %v", m.Region, err)
	}
	cr := out.Credentials
	return credentials.NewStaticCredentialsProvider(aws.ToString(cr.AccessKeyId), aws.ToString(cr.SecretAccessKey), aws.ToString(cr.SessionToken))
}
