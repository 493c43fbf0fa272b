package pointer_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/pointer"
	"github.com/berth-dev/berth/store"
)

// fakeSSM speaks the SSM JSON protocol (awsJson1_1) for GetParameter and
// PutParameter, with the documented error shapes.
type fakeSSM struct {
	mu       sync.Mutex
	params   map[string]string
	requests []string
	deny     bool
}

func (f *fakeSSM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	target := r.Header.Get("X-Amz-Target")
	body, _ := io.ReadAll(r.Body)
	f.requests = append(f.requests, target)
	var in struct {
		Name      string
		Value     string
		Overwrite bool
		Type      string
	}
	json.Unmarshal(body, &in)
	fail := func(code int, typ, msg string) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
	}
	if f.deny {
		fail(400, "AccessDeniedException", "User is not authorized to perform: ssm:"+strings.TrimPrefix(target, "AmazonSSM."))
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	switch target {
	case "AmazonSSM.GetParameter":
		v, ok := f.params[in.Name]
		if !ok {
			fail(400, "ParameterNotFound", "")
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"Parameter": map[string]any{
			"Name": in.Name, "Value": v, "Type": "String", "Version": 1, "ARN": "arn:aws:ssm:eu-west-1:123456789012:parameter" + in.Name}})
	case "AmazonSSM.PutParameter":
		if _, ok := f.params[in.Name]; ok && !in.Overwrite {
			fail(400, "ParameterAlreadyExists", "The parameter already exists.")
			return
		}
		if in.Type != "String" {
			fail(400, "ValidationException", "bad type")
			return
		}
		f.params[in.Name] = in.Value
		json.NewEncoder(w).Encode(map[string]any{"Version": 2, "Tier": "Standard"})
	default:
		fail(400, "UnknownOperationException", target)
	}
}

func newSSM(t *testing.T, f *fakeSSM) *ssm.Client {
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return ssm.NewFromConfig(aws.Config{
		Region:           "eu-west-1",
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		BaseEndpoint:     aws.String(srv.URL),
		RetryMaxAttempts: 1,
	})
}

func TestSSMPointer(t *testing.T) {
	ctx := context.Background()
	f := &fakeSSM{params: map[string]string{}}
	p := pointer.SSM{Client: newSSM(t, f), Prefix: "/berth/releases/", Region: "eu-west-1"}

	if _, err := p.Get(ctx, "app", pointer.Latest); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get unset: %v", err)
	}
	steps := []struct {
		version string
		force   bool
		moved   bool
		want    string
	}{
		{"1.0.0", false, true, "1.0.0"},
		{"2.0.0", false, true, "2.0.0"},
		{"1.5.0", false, false, "2.0.0"},
		{"2.0.0", false, false, "2.0.0"},
		{"1.5.0", true, true, "1.5.0"},
	}
	for _, s := range steps {
		moved, _, err := p.Advance(ctx, "app", pointer.Latest, s.version, artifact.CompareVersions, s.force)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := p.Get(ctx, "app", pointer.Latest)
		if moved != s.moved || got != s.want {
			t.Fatalf("advance to %s (force %v): moved %v, latest %s; want %v, %s", s.version, s.force, moved, got, s.moved, s.want)
		}
	}
	if f.params["/berth/releases/app/latest"] != "1.5.0" {
		t.Fatalf("parameters = %v", f.params)
	}

	f.deny = true
	_, _, err := p.Advance(ctx, "app", pointer.Latest, "9.0.0", artifact.CompareVersions, false)
	if !errors.Is(err, store.ErrPermissionDenied) || !strings.Contains(err.Error(), "eu-west-1") {
		t.Fatalf("denied: %v", err)
	}
}

func TestInStorePointerConcurrent(t *testing.T) {
	ctx := context.Background()
	s := newFileStore(t)
	p := pointer.InStore{Store: s}
	versions := []string{"1.0.0", "1.2.0", "3.0.0", "2.0.0", "1.1.0", "2.5.0", "0.9.0", "3.0.0-rc.1"}
	var wg sync.WaitGroup
	for _, v := range versions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := p.Advance(ctx, "app", pointer.Latest, v, artifact.CompareVersions, false); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got, _ := p.Get(ctx, "app", pointer.Latest); got != "3.0.0" {
		t.Fatalf("latest = %s after concurrent advances, want 3.0.0", got)
	}
}

// Each pointer has its own place; latest keeps the one it always had, so
// stores and parameters written by older berth keep working, and the others
// end in "latest" too, where the artifact-write policy lets writers put.
func TestPointerPlaces(t *testing.T) {
	ctx := context.Background()
	f := &fakeSSM{params: map[string]string{}}
	ps := pointer.SSM{Client: newSSM(t, f), Prefix: "/berth/releases", Region: "eu-west-1"}
	s := newFileStore(t)
	is := pointer.InStore{Store: s}
	for _, p := range []pointer.Pointer{ps, is} {
		if _, _, err := p.Advance(ctx, "app", pointer.Latest, "1.0.0", artifact.CompareVersions, false); err != nil {
			t.Fatal(err)
		}
		if _, _, err := p.Advance(ctx, "app", pointer.LatestPrerelease, "2.0.0-rc.1", artifact.CompareVersions, false); err != nil {
			t.Fatal(err)
		}
		if v, err := p.Get(ctx, "app", pointer.Latest); v != "1.0.0" || err != nil {
			t.Fatalf("%s: latest = %q, %v", p, v, err)
		}
		if v, err := p.Get(ctx, "app", pointer.LatestPrerelease); v != "2.0.0-rc.1" || err != nil {
			t.Fatalf("%s: latest-prerelease = %q, %v", p, v, err)
		}
		if _, err := p.Get(ctx, "app", "newest"); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("%s: unknown pointer: %v", p, err)
		}
	}
	if f.params["/berth/releases/app/latest"] != "1.0.0" || f.params["/berth/releases/app/prerelease/latest"] != "2.0.0-rc.1" {
		t.Fatalf("parameters = %v", f.params)
	}
	for _, key := range []string{"app/latest.json", "app/prerelease/latest.json"} {
		if _, err := s.Stat(ctx, key); err != nil {
			t.Fatalf("in-store pointer %s: %v", key, err)
		}
	}
}
