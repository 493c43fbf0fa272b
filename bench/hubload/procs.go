package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// proc is one server process the benchmark started.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stop   syscall.Signal // asks it to shut down cleanly
	exited chan struct{}  // closed once it has been waited for
}

// procs holds every process the benchmark started, so that one deferred
// stopAll ends them all: on success, on failure and on Ctrl-C.
type procs struct {
	mu   sync.Mutex
	list []*proc
}

// start runs cmd with its output appended to logPath (unless the caller
// set cmd.Stderr already) and registers it for stopAll.
func (ps *procs) start(name string, cmd *exec.Cmd, logPath string, stop syscall.Signal) (*proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log of %s: %w", name, err)
	}
	cmd.Stdout = logf
	if cmd.Stderr == nil {
		cmd.Stderr = logf
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// Its own process group: Ctrl-C reaches only this program, which then
	// stops the servers in order. Pdeathsig: if this program is killed
	// outright, the kernel kills the servers.
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, stop: stop, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	ps.mu.Lock()
	ps.list = append(ps.list, p)
	ps.mu.Unlock()
	return p, nil
}

// shutdown signals the process, waits up to 15 s, then kills it.
func (p *proc) shutdown() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(p.stop)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// stopAll shuts down every registered process, the newest first (a hub
// before its database and data plane).
func (ps *procs) stopAll() {
	ps.mu.Lock()
	list := ps.list
	ps.list = nil
	ps.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		list[i].shutdown()
	}
}

// stopOne shuts down p and forgets it.
func (ps *procs) stopOne(p *proc) {
	p.shutdown()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for i, q := range ps.list {
		if q == p {
			ps.list = append(ps.list[:i], ps.list[i+1:]...)
			break
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitHTTP polls url until ok says the answer is good, the process exits or
// 60 s pass.
func waitHTTP(ctx context.Context, p *proc, url string, ok func(*http.Response) bool) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if ok(resp) {
				return nil
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before it answered %s", p.name, url)
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer %s: %w", p.name, url, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// minio is one MinIO server: one region of the data plane.
type minio struct {
	Region, Endpoint, AccessKey, SecretKey string
	proc                                   *proc
}

// startMinIO starts one MinIO server for region with its data in dataDir.
func startMinIO(ctx context.Context, ps *procs, bin, dataDir, logPath, region, secret string) (*minio, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dataDir, "minio-"+region)
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	m := &minio{Region: region, Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), AccessKey: "berth", SecretKey: secret}
	cmd := exec.Command(bin, "server", data, "--address", fmt.Sprintf("127.0.0.1:%d", port))
	cmd.Env = append(environWithout("MINIO_"),
		"MINIO_ROOT_USER="+m.AccessKey, "MINIO_ROOT_PASSWORD="+m.SecretKey, "MINIO_SITE_REGION="+region,
		"MINIO_UPDATE=off", "MINIO_CI_CD=1", "MINIO_BROWSER=off")
	p, err := ps.start("minio "+region, cmd, logPath, syscall.SIGTERM)
	if err != nil {
		return nil, err
	}
	m.proc = p
	// Live answers 200 before the object layer is up, saying so only in
	// this header.
	err = waitHTTP(ctx, p, m.Endpoint+"/minio/health/live", func(r *http.Response) bool {
		return r.StatusCode == http.StatusOK && r.Header.Get("X-Minio-Server-Status") != "offline"
	})
	return m, err
}

// startPostgres initialises a throw-away cluster in the new directory pgDir
// and starts it on a loopback port with the server's default durability
// settings (fsync on, as a deployment has). As root it runs as "postgres"
// or "nobody": PostgreSQL refuses to run as root; every parent of pgDir
// must let that user through.
func startPostgres(ctx context.Context, ps *procs, bindir, pgDir, logPath string) (string, *proc, error) {
	cred, err := unprivileged()
	if err != nil {
		return "", nil, err
	}
	if err := os.Mkdir(pgDir, 0o700); err != nil {
		return "", nil, err
	}
	if cred != nil {
		if err := os.Chown(pgDir, int(cred.Uid), int(cred.Gid)); err != nil {
			return "", nil, err
		}
	}
	data := filepath.Join(pgDir, "data")
	pgCmd := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(bindir, name), args...)
		cmd.Env = append(environWithout("PG"), "LC_ALL=C")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
		return cmd
	}
	if out, err := pgCmd("initdb", "-D", data, "-U", "berth", "--auth=trust", "--encoding=UTF8").CombinedOutput(); err != nil {
		return "", nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	cmd := pgCmd("postgres", "-D", data, "-k", pgDir, "-h", "127.0.0.1", "-p", strconv.Itoa(port))
	// SIGINT is PostgreSQL's fast shutdown.
	p, err := ps.start("postgres", cmd, logPath, syscall.SIGINT)
	if err != nil {
		return "", nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-p.exited:
			return "", nil, errors.New("postgres exited before it listened; see its log")
		case <-ctx.Done():
			return "", nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return "", nil, fmt.Errorf("postgres not listening on %s after 60 s", addr)
		}
	}
	return "postgres://berth@" + addr + "/postgres?sslmode=disable", p, nil
}

// postgresBinDir returns $BERTH_PG_BINDIR or the newest
// /usr/lib/postgresql/*/bin with initdb and postgres.
func postgresBinDir() (string, error) {
	if d := os.Getenv("BERTH_PG_BINDIR"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	var ok []string
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "postgres")) {
			ok = append(ok, d)
		}
	}
	if len(ok) == 0 {
		return "", errors.New("PostgreSQL server programs not found in /usr/lib/postgresql/*/bin: install the Debian package postgresql, set BERTH_PG_BINDIR, or run with -engines sqlite")
	}
	major := func(d string) int { n, _ := strconv.Atoi(filepath.Base(filepath.Dir(d))); return n }
	sort.Slice(ok, func(i, j int) bool { return major(ok[i]) > major(ok[j]) })
	return ok[0], nil
}

// minioBinary returns $BERTH_MINIO, $BERTH_TOOLS_DIR/bin/minio,
// ~/.cache/berth-tools/bin/minio or minio on PATH.
func minioBinary() (string, error) {
	var candidates []string
	if p := os.Getenv("BERTH_MINIO"); p != "" {
		candidates = append(candidates, p)
	}
	if d := os.Getenv("BERTH_TOOLS_DIR"); d != "" {
		candidates = append(candidates, filepath.Join(d, "bin", "minio"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		candidates = append(candidates, filepath.Join(home, ".cache", "berth-tools", "bin", "minio"))
	}
	for _, p := range candidates {
		if isExecutable(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	return "", errors.New("minio not found ($BERTH_MINIO, $BERTH_TOOLS_DIR/bin, ~/.cache/berth-tools/bin, PATH): install it with scripts/install-tools.sh")
}

func unprivileged() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New(`running as root and neither user "postgres" nor "nobody" exists to run PostgreSQL as`)
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func environWithout(prefix string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if len(kv) < len(prefix) || kv[:len(prefix)] != prefix {
			env = append(env, kv)
		}
	}
	return env
}
