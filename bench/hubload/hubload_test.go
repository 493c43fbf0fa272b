package main

import (
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var out []time.Duration
		for _, n := range ns {
			out = append(out, time.Duration(n)*time.Millisecond)
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one", ms(7), 0.99, 7 * time.Millisecond},
		{"median of four is the second", ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{"median of five", ms(1, 2, 3, 4, 5), 0.5, 3 * time.Millisecond},
		{"p99 of 100", ms(hundred...), 0.99, 99 * time.Millisecond},
		{"p50 of 100", ms(hundred...), 0.5, 50 * time.Millisecond},
		{"p100", ms(1, 2, 3), 1, 3 * time.Millisecond},
	} {
		if got := percentile(tc.sorted, tc.q); got != tc.want {
			t.Errorf("%s: percentile(%v) = %v, want %v", tc.name, tc.q, got, tc.want)
		}
	}
}

func TestProcParsers(t *testing.T) {
	status := "Name:\tberth\nVmPeak:\t  812345 kB\nVmHWM:\t   98304 kB\nVmRSS:\t   65536 kB\n"
	if got, err := statusField(status, "VmHWM"); err != nil || got != 98304 {
		t.Errorf("VmHWM = %d, %v", got, err)
	}
	if _, err := statusField(status, "VmSwap"); err == nil {
		t.Error("a missing field parsed")
	}
	// The command name may hold spaces and parentheses.
	stat := "4242 (berth (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 125 0 0 20 0 12 0"
	if got, err := statCPU(stat); err != nil || got != 3.75 {
		t.Errorf("statCPU = %v, %v, want 3.75", got, err)
	}
	if _, err := statCPU("4242 (berth) S 1"); err == nil {
		t.Error("a short stat parsed")
	}
}

func TestCodeWriterRedactsTheSetupCode(t *testing.T) {
	var log strings.Builder
	w := &codeWriter{log: &log, code: make(chan string, 1)}
	out := "berth: first start: create the first user with\n  curl -X POST http://127.0.0.1:1/api/v1/setup -d '{\"code\":\"0123456789abcdef0123456789abcdef\",\"email\":\"you@example.com\"}'\nberth: hub list"
	// Written in pieces, as a pipe delivers it.
	for _, piece := range []string{out[:30], out[30:100], out[100:]} {
		if _, err := w.Write([]byte(piece)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case code := <-w.code:
		if code != "0123456789abcdef0123456789abcdef" {
			t.Errorf("code %q", code)
		}
	default:
		t.Fatal("no code delivered")
	}
	if strings.Contains(log.String(), "0123456789abcdef") || !strings.Contains(log.String(), "redacted") {
		t.Errorf("log:\n%s", log.String())
	}
	if strings.Contains(log.String(), "hub list") {
		t.Error("an unfinished line was written before its newline")
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags(nil)
	if err != nil || o.clients != 50 || o.duration != 20*time.Second || len(o.regions) != 2 || len(o.engines) != 2 {
		t.Fatalf("defaults: %+v, %v", o, err)
	}
	for _, bad := range [][]string{
		{"-regions", "4"}, {"-regions", "0"}, {"-regions", "one"},
		{"-engines", "mysql"}, {"-clients", "0"}, {"-duration", "0s"}, {"extra"},
	} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestTable(t *testing.T) {
	got := table([]result{{Regions: 3, Engine: "sqlite", Workload: "credentials (write)", Clients: 50, Requests: 1000, Errors: 2,
		Elapsed: 10 * time.Second, P50: 1500 * time.Microsecond, P99: 20 * time.Millisecond, PeakRSS: 2048, HWMReset: true,
		ServerCPU: 5.01, MinIOCPU: 10.02, OpenFDs: 17, Load1: 3.5}})
	want := "| 3 | sqlite | credentials (write) | 50 | 1000 | 100.0 | 1.5 | 20.0 | 2 | 2.0 | 5.00 | 10.00 | 17 | 3.50 |"
	if !strings.Contains(got, want) {
		t.Errorf("table:\n%s\nwant row\n%s", got, want)
	}
}
