package testenv

import (
	"bytes"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// tokenShape matches a berth API token (hub.TokenPrefix, lookup id, secret).
var tokenShape = regexp.MustCompile(`berth_[0-9a-f]{16}_[A-Za-z0-9_-]{20,}`)

// LogScanner collects what a server under test logs, at debug level, and
// fails the test at cleanup when any of it holds a secret: an API token by
// its shape, or a value registered with Secret (keys, external IDs,
// passwords the test created).
type LogScanner struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	secrets []string
}

// NewLogScanner returns a scanner checked when t ends.
func NewLogScanner(t testing.TB) *LogScanner {
	l := &LogScanner{}
	t.Cleanup(func() {
		for _, line := range l.Leaks() {
			t.Errorf("a secret was logged: %s", line)
		}
	})
	return l
}

// Logger logs everything, debug included, into the scanner.
func (l *LogScanner) Logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (l *LogScanner) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// Secret registers values that must never be logged.
func (l *LogScanner) Secret(values ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range values {
		if v != "" {
			l.secrets = append(l.secrets, v)
		}
	}
}

// Lines returns how many lines were logged, so a test can show the scan
// saw something.
func (l *LogScanner) Lines() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Count(l.buf.Bytes(), []byte("\n"))
}

// Leaks returns the logged lines that hold a secret, with the secret
// replaced so the report does not repeat the leak.
func (l *LogScanner) Leaks() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.buf.String(), "\n") {
		leaked := tokenShape.MatchString(line)
		for _, s := range l.secrets {
			if strings.Contains(line, s) {
				leaked = true
				line = strings.ReplaceAll(line, s, "[REDACTED]")
			}
		}
		if leaked {
			out = append(out, tokenShape.ReplaceAllString(line, "berth_[REDACTED]"))
		}
	}
	return out
}
