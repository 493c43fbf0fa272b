package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// workload is one kind of request the clients repeat.
type workload struct {
	Name   string
	Method string
	Path   string
	Body   string
}

// result is what one workload measured against one hub.
type result struct {
	Regions   int
	Engine    string
	Workload  string
	Clients   int
	Requests  int // answered 2xx within the measured window
	Errors    int // transport errors and non-2xx answers
	Elapsed   time.Duration
	P50, P99  time.Duration
	PeakRSS   int64   // server's VmHWM in KiB during the workload (since start if it could not be reset)
	HWMReset  bool    // PeakRSS covers this workload alone
	ServerCPU float64 // server user+sys CPU seconds during the workload
	MinIOCPU  float64 // the same for all MinIO servers together
	OpenFDs   int     // the server's open file descriptors at the end
	Load1     float64 // 1-minute load average at the end
	FirstErr  string
}

// drive runs clients goroutines that repeat w against the hub for dur and
// returns the latencies of the 2xx answers, the number of failures and the
// first failure's message. Requests in flight at the end finish and count:
// elapsed runs to the last answer.
func drive(ctx context.Context, hc *http.Client, url, token string, w workload, clients int, dur time.Duration) (lat []time.Duration, errs int, firstErr string, elapsed time.Duration) {
	start := time.Now()
	end := start.Add(dur)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			myErrs, myFirst := 0, ""
			for {
				t0 := time.Now()
				if !t0.Before(end) || ctx.Err() != nil {
					break
				}
				err := once(ctx, hc, w.Method, url+w.Path, token, w.Body)
				if err != nil {
					if ctx.Err() != nil {
						break
					}
					myErrs++
					if myFirst == "" {
						myFirst = err.Error()
					}
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			errs += myErrs
			if firstErr == "" {
				firstErr = myFirst
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return lat, errs, firstErr, time.Since(start)
}

// once sends one request and reads the whole answer.
func once(ctx context.Context, hc *http.Client, method, url, token, body string) error {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		if len(data) > 200 {
			data = data[:200]
		}
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(data))
	}
	return nil
}

// percentile returns the q-th quantile (0 < q <= 1) of sorted by the
// nearest-rank method; 0 for no samples.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(q*float64(len(sorted)) + 0.999999999)
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

func summarize(lat []time.Duration) (p50, p99 time.Duration) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return percentile(lat, 0.50), percentile(lat, 0.99)
}

// procStatus returns a field of /proc/PID/status in KiB (VmHWM, VmRSS).
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return statusField(string(b), field)
}

func statusField(status, field string) (int64, error) {
	for _, line := range strings.Split(status, "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || name != field {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("parse %s: %q", field, line)
		}
		return strconv.ParseInt(f[0], 10, 64)
	}
	return 0, fmt.Errorf("no %s in /proc status", field)
}

// resetPeakRSS sets the process's VmHWM back to its current RSS (Linux
// 4.0+, writing 5 to clear_refs), so the next reading is the peak of what
// follows.
func resetPeakRSS(pid int) bool {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
}

// cpuSeconds returns the process's user+sys CPU time from /proc/PID/stat.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return statCPU(string(b))
}

// statCPU parses utime and stime (fields 14 and 15, in clock ticks of
// 1/100 s on Linux) after the command name, which may hold spaces.
func statCPU(stat string) (float64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc stat: no command name")
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("parse /proc stat: %d fields", len(f))
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse /proc stat: utime %q stime %q", f[11], f[12])
	}
	return (ut + st) / 100, nil
}

// openFDs returns how many file descriptors the process has open: its
// database files, listeners and connections.
func openFDs(pid int) (int, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(fds), err
}

// loadAvg returns the 1-minute load average.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// table renders the results as one Markdown table.
func table(rs []result) string {
	var b strings.Builder
	b.WriteString("| regions | database | workload | clients | requests | req/s | p50 ms | p99 ms | errors | server peak RSS MiB | server CPU ms/req | MinIO CPU ms/req | server open fds | load 1m |\n")
	b.WriteString("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rs {
		rps, cpu, mcpu := 0.0, 0.0, 0.0
		if r.Elapsed > 0 {
			rps = float64(r.Requests) / r.Elapsed.Seconds()
		}
		if n := r.Requests + r.Errors; n > 0 {
			cpu = r.ServerCPU * 1000 / float64(n)
			mcpu = r.MinIOCPU * 1000 / float64(n)
		}
		rss := fmt.Sprintf("%.1f", float64(r.PeakRSS)/1024)
		if !r.HWMReset {
			rss += " (since start)"
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %d | %d | %.1f | %s | %s | %d | %s | %.2f | %.2f | %d | %.2f |\n",
			r.Regions, r.Engine, r.Workload, r.Clients, r.Requests, rps, ms(r.P50), ms(r.P99), r.Errors, rss, cpu, mcpu, r.OpenFDs, r.Load1)
	}
	return b.String()
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64)
}
