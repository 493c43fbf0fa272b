package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Postgres is a throw-away PostgreSQL cluster on a loopback port, for one
// test (and its subtests).
type Postgres struct {
	// URL connects as the cluster's superuser "berth" to database "berth".
	URL string
	Dir string
}

// PostgresBinDir returns the directory of Debian's PostgreSQL server
// programs (initdb, postgres): $BERTH_PG_BINDIR, else the newest
// /usr/lib/postgresql/*/bin.
func PostgresBinDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("BERTH_PG_BINDIR"); d != "" {
		return d
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	var ok []string
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "postgres")) {
			ok = append(ok, d)
		}
	}
	if len(ok) == 0 {
		Require(t, "PostgreSQL server programs not found in /usr/lib/postgresql/*/bin (Debian package postgresql); "+installHint)
		return ""
	}
	sort.Slice(ok, func(i, j int) bool { return pgMajor(ok[i]) > pgMajor(ok[j]) })
	return ok[0]
}

func pgMajor(bindir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(bindir)))
	return n
}

// StartPostgres initialises a cluster in a new directory and starts it on a
// free loopback port; the test's cleanup stops it and removes the
// directory. PostgreSQL refuses to run as root, so as root the cluster runs
// as the unprivileged user "postgres" (Debian's package creates it) or
// "nobody".
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	bin := PostgresBinDir(t)
	cred, err := unprivileged()
	if err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	// Not t.TempDir: its parents are private to root, and the server's
	// user must reach the directory.
	dir, err := os.MkdirTemp("", "berth-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(dir, "data")
	run := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Env = append(environWithout("PG"), "LC_ALL=C")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
		return cmd
	}
	if out, err := run("initdb", "-D", data, "-U", "berth", "--auth=trust", "--encoding=UTF8", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	// Another process can take the port between our probe and the
	// server's listen: then the server exits, and a new port is tried.
	var port string
	logPath := filepath.Join(dir, "postgres.log")
	for attempt := 1; ; attempt++ {
		ports, err := freePorts(1)
		if err != nil {
			t.Fatal(err)
		}
		port = strconv.Itoa(ports[0])
		logf, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		// Durability is not under test: fsync off makes a cluster start
		// and tests run several times faster.
		cmd := run("postgres", "-D", data, "-k", dir, "-h", "127.0.0.1", "-p", port,
			"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatalf("start postgres: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGINT) // fast shutdown
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		})
		err = waitListening("127.0.0.1:"+port, exited)
		if err == nil {
			break
		}
		log, _ := os.ReadFile(logPath)
		if attempt < 3 && strings.Contains(string(log), "could not bind") {
			continue
		}
		t.Fatalf("postgres: %v\n%s", err, log)
	}
	// createdb over the socket would need the server's user; the test's
	// database is created by connecting to "postgres" and is left to the
	// caller: the URL names "postgres", which always exists.
	return &Postgres{URL: "postgres://berth@127.0.0.1:" + port + "/postgres?sslmode=disable", Dir: dir}
}

func waitListening(addr string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			// The port opens a moment before connections are accepted;
			// callers retry their first connection briefly.
			return nil
		}
		select {
		case <-exited:
			return errors.New("postgres exited before it listened")
		case <-ctx.Done():
			return fmt.Errorf("postgres not listening on %s after %v", addr, StartTimeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// unprivileged returns the credential to run PostgreSQL as: nil when this
// process is not root.
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
