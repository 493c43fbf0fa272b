package minioadmin

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

func TestSealOpen(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 3000) // several 16 KiB fragments
	for _, alg := range []byte{algArgon2idAESGCM, algArgon2idChaCha20, algPBKDF2AESGCM} {
		for _, data := range [][]byte{{}, []byte(`{"secretKey":"s","status":"enabled"}`), big} {
			header := make([]byte, headerSize)
			copy(header, "a salt of thirty-two bytes......")
			header[saltSize] = alg
			copy(header[saltSize+1:], "nonce-08")
			sealed, err := sealWith("admin-secret", header, data)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(sealed, []byte("secretKey")) {
				t.Fatalf("alg %d: plaintext visible in the sealed body", alg)
			}
			got, err := open("admin-secret", sealed)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("alg %d, %d bytes: open = %d bytes, %v", alg, len(data), len(got), err)
			}
			if _, err := open("other-secret", sealed); !errors.Is(err, errNotAuthentic) {
				t.Errorf("alg %d: open with another secret: err = %v", alg, err)
			}
			if len(sealed) > headerSize {
				tampered := bytes.Clone(sealed)
				tampered[len(tampered)-1] ^= 1
				if _, err := open("admin-secret", tampered); !errors.Is(err, errNotAuthentic) {
					t.Errorf("alg %d: open of a tampered body: err = %v", alg, err)
				}
			}
		}
	}
}

func TestSealIsRandomised(t *testing.T) {
	a, err := seal("k", []byte("same"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := seal("k", []byte("same"))
	if bytes.Equal(a[:headerSize], b[:headerSize]) || a[saltSize] != algArgon2idAESGCM {
		t.Fatal("two seals share salt and nonce, or do not use argon2id with AES-GCM")
	}
}

func TestParseError(t *testing.T) {
	for _, tc := range []struct {
		status     int
		body, code string
	}{
		{404, `{"Code":"XMinioAdminNoSuchUser","Message":"The specified user does not exist."}`, "XMinioAdminNoSuchUser"},
		{403, `<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>Access Denied.</Message></Error>`, "AccessDenied"},
		{502, `<html>bad gateway</html>`, "BadGateway"},
		{500, ``, "InternalServerError"},
	} {
		err := parseError(tc.status, []byte(tc.body))
		var e *Error
		if !errors.As(err, &e) || e.Code != tc.code || e.StatusCode != tc.status {
			t.Errorf("parseError(%d, %q) = %#v, want code %s", tc.status, tc.body, err, tc.code)
		}
	}
	if !errors.Is(parseError(http.StatusNotFound, []byte(`{"Code":"XMinioAdminNoSuchUser"}`)), ErrNoSuchUser) {
		t.Error("XMinioAdminNoSuchUser is not ErrNoSuchUser")
	}
}

// FuzzOpen: an answer from the server is outside input; open must fail
// cleanly on anything.
func FuzzOpen(f *testing.F) {
	sealed, _ := seal("k", []byte(`{"policiesAttached":["p"]}`))
	f.Add(sealed)
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{2}, headerSize+20))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > headerSize && data[saltSize] <= algArgon2idChaCha20 {
			data[saltSize] = algPBKDF2AESGCM // keep each run cheap: argon2id takes 64 MiB
		}
		open("k", data)
	})
}

// TestRetryWhileNotReady: MinIO answers 503 XMinioServerNotInitialized for
// a while after it reports itself healthy; the call waits for it.
func TestRetryWhileNotReady(t *testing.T) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"Code":"XMinioServerNotInitialized","Message":"Server not initialized yet, please try again."}`))
			return
		}
		w.Write([]byte(`{"status":"enabled","policyName":"a,b"}`))
	}))
	defer srv.Close()
	c, err := New(srv.URL, "eu-west-1", aws.Credentials{AccessKeyID: "admin", SecretAccessKey: "secret"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.UserInfo(context.Background(), "u")
	if err != nil || calls != 3 || len(info.Policies) != 2 {
		t.Fatalf("UserInfo = %+v, %v after %d calls", info, err, calls)
	}

	calls = -100 // never ready
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := c.UserInfo(ctx, "u"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's deadline", err)
	}
}
