package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/artifact"
)

func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printable escapes what a terminal would act on: control characters
// (escape sequences among them), bidirectional overrides and invalid UTF-8.
// Manifests, pointers and listed names come from the store, which anyone
// with write access to it controls.
func printable(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || isBidi(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i, w := 0, 0; i < len(s); i += w {
		r, n := utf8.DecodeRuneInString(s[i:])
		w = n
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x80 && unicode.IsControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unicode.IsControl(r) || isBidi(r) || r == utf8.RuneError:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isBidi(r rune) bool {
	return r == 0x200e || r == 0x200f || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// explain words an artifact command's error for people: Ctrl-C is
// "interrupted", and unless -v the AWS SDK errors inside shrink to their
// code and message, without request ids and retry counts. The kinds stay,
// so the exit code does not change.
func (g *Globals) explain(err error) error {
	switch {
	case err == nil || isSilent(err):
		return err
	case errors.Is(err, context.Canceled):
		return reworded{"interrupted", err}
	}
	if msg := g.brief(err); msg != err.Error() {
		return reworded{msg, err}
	}
	return err
}

// brief is err's message with the SDK errors in it shortened, unless -v.
func (g *Globals) brief(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	if g.Verbose {
		return msg
	}
	if errors.Is(err, context.Canceled) {
		return "interrupted"
	}
	for _, op := range operationErrors(err, nil) {
		msg = strings.ReplaceAll(msg, op.Error(), shortSDK(op))
	}
	return msg
}

// shortSDK says what an SDK call answered in a few words: the service's
// error code and message, the network error, or the HTTP status.
func shortSDK(op *smithy.OperationError) string {
	var api smithy.APIError
	var netErr *net.OpError
	var resp *smithyhttp.ResponseError
	switch {
	case errors.As(op, &api):
		code, msg := api.ErrorCode(), api.ErrorMessage()
		if msg == "" || msg == code {
			return code
		}
		return code + ": " + msg
	case errors.As(op, &netErr):
		return netErr.Error()
	case errors.As(op, &resp):
		return fmt.Sprintf("HTTP status %d", resp.HTTPStatusCode())
	}
	return op.Error()
}

// operationErrors collects the outermost SDK operation errors in err's tree.
func operationErrors(err error, found []*smithy.OperationError) []*smithy.OperationError {
	if op, ok := err.(*smithy.OperationError); ok {
		return append(found, op)
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		if inner := u.Unwrap(); inner != nil {
			found = operationErrors(inner, found)
		}
	case interface{ Unwrap() []error }:
		for _, inner := range u.Unwrap() {
			if inner != nil {
				found = operationErrors(inner, found)
			}
		}
	}
	return found
}

// reworded is err with a message for people; errors.Is still sees err.
type reworded struct {
	msg string
	err error
}

func (r reworded) Error() string { return r.msg }
func (r reworded) Unwrap() error { return r.err }

// explainErrors has cmd's errors worded by explain.
func explainErrors(g *Globals, cmd *cobra.Command) *cobra.Command {
	run := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return g.explain(run(cmd, args)) }
	return cmd
}

// statusText is a region status for text output.
func statusText(status string) string {
	if status == artifact.StatusRefused {
		return "access refused"
	}
	return status
}

// silenced keeps an error's exit code but not its message: JSON output
// already carries the details on stdout.
type silenced struct{ err error }

func (s silenced) Error() string   { return s.err.Error() }
func (s silenced) Unwrap() []error { return []error{errSilent, s.err} }

func silence(err error) error {
	if err == nil {
		return nil
	}
	return silenced{err}
}

// errSilent marks errors already reported on stdout.
var errSilent = errors.New("already reported")

// jsonResult prints res as the one JSON document and keeps err's exit code
// without printing err again: the document carries the details.
func (g *Globals) jsonResult(res any, err error) error {
	if perr := g.printJSON(res); perr != nil {
		return perr
	}
	return silence(err)
}
