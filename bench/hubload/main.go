// Command hubload measures berth's hub under load: a real `berth server`
// process on SQLite and on PostgreSQL, MinIO as the data plane with one and
// three regions, and 50 concurrent clients that ask for short-lived
// credentials (one STS AssumeRole per region on MinIO each) or list a
// project's versions. It prints one Markdown table (requests per second,
// p50 and p99 latency, errors, the server's peak RSS and CPU per request)
// and saves it to bench/out/hubload.md. See bench/README.md.
//
//	go run ./bench/hubload [-duration 20s] [-clients 50] [-regions 1,3] [-engines sqlite,postgres]
//
// Every process it starts (MinIO, PostgreSQL, berth server) is stopped when
// it ends, fails or is interrupted with Ctrl-C; the kernel kills them if
// this program is killed outright.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	berth    string
	duration time.Duration
	warmup   time.Duration
	clients  int
	versions int
	regions  []int
	engines  []string
	out      string
	keep     bool
}

// regionNames returns the MinIO servers' regions, in the order they are used.
func regionNames() []string { return []string{"eu-west-1", "us-east-1", "ap-southeast-2"} }

func main() {
	if err := run(); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "hubload:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	var o options
	var regions, engines string
	flag := flag.NewFlagSet("hubload", flag.ContinueOnError)
	flag.StringVar(&o.berth, "berth", "", "berth binary to run (default: go build ./cmd/berth from this checkout)")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "measured time per workload")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before each workload's window")
	flag.IntVar(&o.clients, "clients", 50, "concurrent clients")
	flag.IntVar(&o.versions, "versions", 200, "versions staged in the project before the listing workload")
	flag.StringVar(&regions, "regions", "1,3", "comma-separated numbers of MinIO regions in the data plane (1 to 3)")
	flag.StringVar(&engines, "engines", "sqlite,postgres", "comma-separated databases: sqlite, postgres")
	flag.StringVar(&o.out, "out", "", "where to save the table (default bench/out/hubload.md in the checkout)")
	flag.BoolVar(&o.keep, "keep", false, "keep the data directories (MinIO, PostgreSQL, hub) after the run")
	if err := flag.Parse(args); err != nil {
		return o, err
	}
	if flag.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q: every setting is a flag (see -h)", flag.Args())
	}
	if o.duration <= 0 || o.warmup < 0 || o.clients < 1 || o.versions < 1 {
		return o, errors.New("-duration, -clients and -versions must be positive and -warmup not negative")
	}
	for _, f := range strings.Split(regions, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > len(regionNames()) {
			return o, fmt.Errorf("-regions %q: give numbers from 1 to %d, as in 1,3", regions, len(regionNames()))
		}
		o.regions = append(o.regions, n)
	}
	for _, e := range strings.Split(engines, ",") {
		e = strings.TrimSpace(e)
		if e != "sqlite" && e != "postgres" {
			return o, fmt.Errorf("-engines %q: use sqlite, postgres or both, as in sqlite,postgres", engines)
		}
		o.engines = append(o.engines, e)
	}
	return o, nil
}

func run() error {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C ends this program at once; Pdeathsig then ends the servers
	}()

	root, err := repoRoot()
	if err != nil {
		return err
	}
	if o.out == "" {
		o.out = filepath.Join(root, "bench", "out", "hubload.md")
	}
	if o.berth != "" && !isExecutable(o.berth) {
		return fmt.Errorf("-berth %s: not an executable file; build one with go build ./cmd/berth, or leave -berth out", o.berth)
	}
	minioBin, err := minioBinary()
	if err != nil {
		return err
	}
	var pgBin string
	for _, e := range o.engines {
		if e == "postgres" {
			if pgBin, err = postgresBinDir(); err != nil {
				return err
			}
		}
	}

	// Data in one temporary directory, removed at the end; logs in another,
	// kept. 0711: PostgreSQL's unprivileged user must pass through.
	work, err := os.MkdirTemp("", "berth-hubload-")
	if err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(work)
	}
	if err := os.Chmod(work, 0o711); err != nil {
		return err
	}
	logs, err := os.MkdirTemp("", "berth-hubload-logs-")
	if err != nil {
		return err
	}
	logf("logs in %s", logs)
	if o.keep {
		logf("data in %s (kept: -keep)", work)
	}
	ps := &procs{}
	defer ps.stopAll() // runs before the RemoveAll above

	if o.berth == "" {
		o.berth = filepath.Join(work, "berth")
		logf("building berth from %s", root)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", o.berth, "./cmd/berth")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/berth: %w\n%s", err, out)
		}
	}
	file := filepath.Join(work, "app.bin")
	payload := make([]byte, 4096)
	_, _ = rand.Read(payload)
	if err := os.WriteFile(file, payload, 0o644); err != nil {
		return err
	}

	startLoad := loadAvg()
	started := time.Now().UTC()
	var results []result
	for _, n := range o.regions {
		rs, err := runRegions(ctx, ps, o, n, minioBin, pgBin, work, logs, file)
		results = append(results, rs...)
		if err != nil {
			if len(results) > 0 {
				fmt.Print(table(results))
			}
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted; every server it started is stopped (logs in %s)", logs)
			}
			return fmt.Errorf("%d region(s): %w (logs in %s)", n, err, logs)
		}
	}
	report := header(o, root, started, startLoad) + "\n" + table(results) + footnotes(o, results)
	fmt.Print("\n" + report)
	if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(o.out, []byte(report), 0o644); err != nil {
		return fmt.Errorf("save the table: %w", err)
	}
	logf("saved %s; logs in %s", o.out, logs)
	return nil
}

// runRegions starts n MinIO regions and measures every engine against them.
// The versions are staged once, through the first hub; the next hub
// registers the same data plane and lists the same project.
func runRegions(ctx context.Context, ps *procs, o options, n int, minioBin, pgBin, work, logs, file string) ([]result, error) {
	dir := filepath.Join(work, fmt.Sprintf("r%d", n))
	if err := os.Mkdir(dir, 0o711); err != nil {
		return nil, err
	}
	secret := make([]byte, 12)
	_, _ = rand.Read(secret)
	var regions []*minio
	// The MinIO servers of this set stop before the next set starts.
	defer func() {
		for _, m := range regions {
			ps.stopOne(m.proc)
		}
	}()
	for _, name := range regionNames()[:n] {
		logf("%d region(s): starting MinIO %s", n, name)
		m, err := startMinIO(ctx, ps, minioBin, dir, filepath.Join(logs, fmt.Sprintf("r%d-minio-%s.log", n, name)), name, hex.EncodeToString(secret))
		if m != nil && m.proc != nil {
			regions = append(regions, m)
		}
		if err != nil {
			return nil, err
		}
	}
	ids, err := deployDataPlane(ctx, regions)
	if err != nil {
		return nil, err
	}
	setupClient := &http.Client{Timeout: 60 * time.Second}
	staged := false
	var results []result
	for _, engine := range o.engines {
		name := fmt.Sprintf("r%d-%s", n, engine)
		var database string
		var pg *proc
		if engine == "postgres" {
			logf("%s: starting PostgreSQL", name)
			database, pg, err = startPostgres(ctx, ps, pgBin, filepath.Join(dir, "postgres"), filepath.Join(logs, name+"-postgres.log"))
			if err != nil {
				return results, err
			}
		}
		dataDir, err := dataDirFor(dir, engine)
		if err != nil {
			return results, err
		}
		logf("%s: starting berth server", name)
		h, code, err := startHub(ctx, ps, o.berth, dataDir, database, filepath.Join(logs, name+"-server.log"))
		if err != nil {
			return results, err
		}
		if err := setupHub(ctx, setupClient, h, code, regions, ids); err != nil {
			return results, err
		}
		if !staged {
			logf("%s: staging %d versions with vended credentials", name, o.versions)
			t0 := time.Now()
			if err := stageVersions(ctx, h, o.versions, file); err != nil {
				return results, err
			}
			logf("%s: staged in %.1f s", name, time.Since(t0).Seconds())
			staged = true
		}
		if got, err := countVersions(ctx, setupClient, h); err != nil || got != o.versions {
			return results, fmt.Errorf("%s: the hub lists %d versions (%v), want %d", name, got, err, o.versions)
		}
		for _, w := range []workload{
			{Name: "credentials (write)", Method: "POST", Path: "/api/v1/projects/" + project + "/credentials", Body: `{"role":"write"}`},
			{Name: fmt.Sprintf("versions list (%d)", o.versions), Method: "GET", Path: "/api/v1/projects/" + project + "/versions"},
			{Name: fmt.Sprintf("versions page (50 of %d)", o.versions), Method: "GET", Path: "/api/v1/projects/" + project + "/versions?order=newest&limit=50"},
		} {
			if ctx.Err() != nil {
				return results, ctx.Err()
			}
			logf("%s: %s, %d clients, %v", name, w.Name, o.clients, o.duration)
			r, err := measure(ctx, h, regions, w, o)
			if err != nil {
				return results, err
			}
			r.Regions, r.Engine = n, engine
			results = append(results, r)
			logf("%s: %s: %d requests, %.1f/s, p50 %s ms, p99 %s ms, %d errors", name, w.Name, r.Requests,
				float64(r.Requests)/r.Elapsed.Seconds(), ms(r.P50), ms(r.P99), r.Errors)
		}
		ps.stopOne(h.proc)
		if pg != nil {
			ps.stopOne(pg)
		}
	}
	return results, nil
}

// measure runs one workload against the hub and reads the server's peak
// RSS and CPU around it.
func measure(ctx context.Context, h *hubProc, regions []*minio, w workload, o options) (result, error) {
	hc := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		MaxIdleConns: o.clients, MaxIdleConnsPerHost: o.clients, IdleConnTimeout: time.Minute}}
	defer hc.CloseIdleConnections()
	if o.warmup > 0 {
		// Opens the connections and warms the caches; not counted.
		drive(ctx, hc, h.URL, h.writer, w, o.clients, o.warmup)
	}
	pid := h.proc.cmd.Process.Pid
	r := result{Workload: w.Name, Clients: o.clients, HWMReset: resetPeakRSS(pid)}
	cpu0, err := cpuSeconds(pid)
	if err != nil {
		return r, fmt.Errorf("read the server's CPU time (did it exit?): %w", err)
	}
	minio0, err := minioCPU(regions)
	if err != nil {
		return r, err
	}
	lat, errs, firstErr, elapsed := drive(ctx, hc, h.URL, h.writer, w, o.clients, o.duration)
	if ctx.Err() != nil {
		return r, ctx.Err()
	}
	cpu1, err := cpuSeconds(pid)
	if err != nil {
		return r, fmt.Errorf("read the server's CPU time (did it exit?): %w", err)
	}
	minio1, err := minioCPU(regions)
	if err != nil {
		return r, err
	}
	if r.PeakRSS, err = procStatus(pid, "VmHWM"); err != nil {
		return r, err
	}
	if r.OpenFDs, err = openFDs(pid); err != nil {
		return r, err
	}
	r.Requests, r.Errors, r.FirstErr, r.Elapsed = len(lat), errs, firstErr, elapsed
	r.P50, r.P99 = summarize(lat)
	r.ServerCPU, r.MinIOCPU = cpu1-cpu0, minio1-minio0
	r.Load1 = loadAvg()
	return r, nil
}

// minioCPU returns the CPU seconds of all MinIO servers together.
func minioCPU(regions []*minio) (float64, error) {
	var sum float64
	for _, m := range regions {
		s, err := cpuSeconds(m.proc.cmd.Process.Pid)
		if err != nil {
			return 0, fmt.Errorf("read MinIO %s's CPU time (did it exit?): %w", m.Region, err)
		}
		sum += s
	}
	return sum, nil
}

func header(o options, root string, started time.Time, startLoad float64) string {
	commit := "unknown"
	if out, err := exec.Command("git", "-C", root, "describe", "--always", "--dirty").Output(); err == nil {
		commit = strings.TrimSpace(string(out))
	}
	return fmt.Sprintf("# berth hub under load\n\n"+
		"%s, berth %s, %s/%s, %d CPUs; load average (1 min) %.2f at the start, %.2f at the end.\n"+
		"%d concurrent clients (in this program, on the same machine), %v measured per row after a %v warm-up; "+
		"one writer's API token; %d versions staged in the project.\n",
		started.Format("2006-01-02 15:04 UTC"), commit, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), startLoad, loadAvg(),
		o.clients, o.duration, o.warmup, o.versions)
}

func footnotes(o options, rs []result) string {
	var b strings.Builder
	b.WriteString("\n- credentials: `POST /api/v1/projects/app/credentials {\"role\":\"write\"}`: token check, membership, " +
		"one MinIO STS AssumeRole per region with the session policy, one hash-chained audit row.\n")
	fmt.Fprintf(&b, "- versions list: `GET /api/v1/projects/app/versions`: the hub vends itself read credentials (one AssumeRole per region) "+
		"and lists the project in every region (%d versions).\n", o.versions)
	b.WriteString("- versions page: `GET /api/v1/projects/app/versions?order=newest&limit=50`, as the web UI asks: " +
		"from the hub's version index when the hub has one (with the latest pointers, read from the stores at most every 10 s), " +
		"else the same listing as above.\n")
	b.WriteString("- p50/p99 of answered requests; req/s counts 2xx answers over the window. Server CPU is user+sys of the `berth server` " +
		"process over the window per request, MinIO CPU the same for all MinIO servers together (the load clients use the rest); " +
		"peak RSS is the server's VmHWM, reset before each row; open fds are counted at the row's end " +
		"(the rows of one database share one server process).\n")
	for _, r := range rs {
		if r.FirstErr != "" {
			fmt.Fprintf(&b, "- first error, %d region(s) %s %s: %s\n", r.Regions, r.Engine, r.Workload, r.FirstErr)
		}
	}
	return b.String()
}

// repoRoot returns the checkout this program belongs to: the nearest
// directory up from the working directory with berth's go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/berth-dev/berth\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run hubload inside the berth checkout (go run ./bench/hubload)")
		}
		dir = parent
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}
