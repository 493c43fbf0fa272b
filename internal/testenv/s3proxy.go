package testenv

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// DenyingProxy stands in front of an S3 server and answers as Amazon S3
// does to a caller that may not list the whole bucket (s3:ListBucket without
// a prefix condition): GET or HEAD of a missing key is 403 AccessDenied
// instead of 404 NoSuchKey. MinIO always says 404, so without this, tests
// never see what berth's least-privilege policies get on AWS.
//
// Clients point at Endpoint. Requests go to the server unchanged, Host
// header included, so SigV4 signatures made for the proxy's address verify
// there. Path-style addressing only (bucket in the path).
type DenyingProxy struct {
	Endpoint string // http://127.0.0.1:PORT

	refused atomic.Int64
}

// StartDenyingProxy starts a proxy to the S3 server at target (an
// http://host:port URL) and stops it when the test ends.
func StartDenyingProxy(t testing.TB, target string) *DenyingProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		t.Fatalf("denying proxy: bad target %q: %v", target, err)
	}
	p := &DenyingProxy{}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = r.In.Host // signed by the client; must reach the server as sent
		},
		ModifyResponse: p.modify,
		// A dead server is a 502 to the client, which is all tests of
		// failover need; the proxy's own log line is noise.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	p.Endpoint = srv.URL
	return p
}

// Refused returns how many 404s the proxy has turned into 403s, so a test
// can tell that it went through the path it means to test.
func (p *DenyingProxy) Refused() int64 { return p.refused.Load() }

func (p *DenyingProxy) modify(resp *http.Response) error {
	req := resp.Request
	if resp.StatusCode != http.StatusNotFound || !isObjectPath(req.URL.Path) {
		return nil
	}
	switch req.Method {
	case http.MethodGet:
		// The code is in the body: only a missing key becomes a refusal,
		// a missing bucket stays 404 NoSuchBucket as on S3.
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return err
		}
		var e struct{ Code string }
		if xml.Unmarshal(body, &e) != nil || e.Code != "NoSuchKey" {
			resp.Body = io.NopCloser(bytes.NewReader(body))
			return nil
		}
	case http.MethodHead:
		// MinIO names the error of a bodiless answer in a header.
		if code := resp.Header.Get("X-Minio-Error-Code"); code != "" && code != "NoSuchKey" {
			return nil
		}
	default:
		return nil
	}
	p.refused.Add(1)
	denied(resp)
	return nil
}

// isObjectPath reports whether a path-style request path names an object
// (/bucket/key) rather than a bucket (/bucket or /bucket/).
func isObjectPath(path string) bool {
	_, key, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	return key != ""
}

// denied rewrites resp into S3's 403 AccessDenied, keeping the request ID.
func denied(resp *http.Response) {
	for k := range resp.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-minio-error-") {
			resp.Header.Del(k)
		}
	}
	resp.StatusCode = http.StatusForbidden
	resp.Status = "403 Forbidden"
	resp.Header.Set("Content-Type", "application/xml")
	if resp.Request.Method == http.MethodHead {
		resp.Body = http.NoBody
		resp.ContentLength = 0
		resp.Header.Del("Content-Length")
		return
	}
	id := resp.Header.Get("X-Amz-Request-Id")
	body := fmt.Appendf(nil, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>%s</RequestId><HostId>%s</HostId></Error>`,
		xmlEscape(id), xmlEscape(resp.Header.Get("X-Amz-Id-2")))
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
