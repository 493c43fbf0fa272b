package access

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/errkind"
)

// Webhook announces requests with a Slack-compatible incoming webhook:
// a POST of {"text": ...}.
type Webhook struct {
	URL  string
	HTTP *http.Client
	// HubURL, when set, is named in the notice.
	HubURL string
}

// Text is the notice for r.
func Text(r *Request, hubURL string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "berth: %s asks for %s on %s for %s: %q. Approvers (%s): berth access approve %d",
		r.Requester, r.PermissionSet, r.Account, r.Duration, r.Reason, r.Approvers, r.ID)
	if hubURL != "" {
		fmt.Fprintf(&b, " (hub %s)", hubURL)
	}
	return b.String()
}

// Notify implements Notifier.
func (w *Webhook) Notify(ctx context.Context, r *Request) error {
	body, err := json.Marshal(map[string]string{"text": Text(r, w.HubURL)})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("post access webhook: %w: %w", err, errkind.Invalid)
	}
	req.Header.Set("Content-Type", "application/json")
	hc := w.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		// The URL of a webhook is a secret: the error names no URL.
		return fmt.Errorf("post access webhook: %w", errkind.Unavailable)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("post access webhook: answered %s: %w", resp.Status, errkind.Unavailable)
	}
	return nil
}
