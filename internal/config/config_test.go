package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseStore(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want Store
		err  string
	}{
		{url: "file:///srv/berth", want: Store{Scheme: "file", Dir: "/srv/berth"}},
		{url: "s3://my-bucket?region=eu-west-1", want: Store{Scheme: "s3", Bucket: "my-bucket", Region: "eu-west-1"}},
		{url: "s3://b.example?region=us-east-1&endpoint=http://127.0.0.1:9000&path_style=true",
			want: Store{Scheme: "s3", Bucket: "b.example", Region: "us-east-1", Endpoint: "http://127.0.0.1:9000", PathStyle: true}},
		{url: "s3://?region=eu-west-1&bucket_parameter=/berth/bucket",
			want: Store{Scheme: "s3", Region: "eu-west-1", BucketParameter: "/berth/bucket"}},
		{url: "file://relative/dir", err: "three slashes"},
		{url: "file:///dir?x=1", err: "absolute directory"},
		{url: "s3://Bad_Bucket?region=eu-west-1", err: "not a valid bucket name"},
		{url: "s3://bucket/prefix?region=eu-west-1", err: "prefix setting"},
		{url: "s3://bucket?region=eu-west-1&colour=red", err: "unknown option"},
		{url: "s3://?region=eu-west-1", err: "name a bucket"},
		{url: "s3://?bucket_parameter=/x", err: "needs region"},
		{url: "s3://bucket?region=EU", err: "not a region name"},
		{url: "s3://bucket?endpoint=ftp://x", err: "http(s) URL"},
		{url: "s3://bucket?path_style=yes", err: "true or false"},
		{url: "gs://bucket", err: "unknown scheme"},
		{url: "/just/a/path", err: "no scheme"},
	} {
		got, err := ParseStore(tc.url)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrInvalid) {
				t.Errorf("ParseStore(%q) = %v, want error containing %q", tc.url, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseStore(%q) = %+v, %v; want %+v", tc.url, got, err, tc.want)
		}
	}
}

func TestResolvePrecedence(t *testing.T) {
	file := &Config{Prefix: "file", Regions: []Region{{Name: "f", Store: "file:///f"}}}
	env := map[string]string{}
	get := func(k string) string { return env[k] }

	c, err := Resolve(file, get, Overrides{})
	if err != nil || c.Prefix != "file" || c.Regions[0].Name != "f" {
		t.Fatalf("file only: %+v %v", c, err)
	}
	env["BERTH_STORES"] = "e1=file:///e1,e2=file:///e2"
	env["BERTH_PREFIX"] = "env"
	c, _ = Resolve(file, get, Overrides{})
	if c.Prefix != "env" || len(c.Regions) != 2 || c.Regions[1].Name != "e2" {
		t.Fatalf("env over file: %+v", c)
	}
	p := "flag"
	c, _ = Resolve(file, get, Overrides{Stores: []string{"x=file:///x"}, Prefix: &p})
	if c.Prefix != "flag" || len(c.Regions) != 1 || c.Regions[0].Name != "x" {
		t.Fatalf("flags over env: %+v", c)
	}
	if file.Prefix != "file" || len(file.Regions) != 1 {
		t.Fatal("Resolve changed its input")
	}
	c, _ = Resolve(nil, func(string) string { return "" }, Overrides{})
	if len(c.Regions) != 0 {
		t.Fatal("defaults invented regions")
	}
}

func TestWriteLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "config.yaml")
	c := &Config{Prefix: "releases", Pointers: "ssm:/berth/releases", Regions: []Region{
		{Name: "eu-west-1", Store: "s3://bucket-1?region=eu-west-1"}, {Name: "local", Store: "file:///srv"}}}
	if err := Write(path, c, false); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Prefix != c.Prefix || got.Pointers != c.Pointers || len(got.Regions) != 2 || got.Regions[1] != c.Regions[1] {
		t.Fatalf("round trip: %+v", got)
	}
	if err := Write(path, c, false); !errors.Is(err, os.ErrExist) {
		t.Fatalf("overwrite without force: %v", err)
	}
	bad := &Config{Regions: []Region{{Name: "a", Store: "file:///a"}, {Name: "a", Store: "file:///b"}}}
	if err := Write(path, bad, true); !errors.Is(err, ErrInvalid) {
		t.Fatalf("duplicate regions: %v", err)
	}
	if again, _ := Load(path); again == nil || again.Prefix != "releases" {
		t.Fatal("a rejected write changed the file")
	}
}

func TestParseRejects(t *testing.T) {
	for _, doc := range []string{
		"regions: []",
		"regions:\n  - name: a\n    store: file:///a\n    extra: 1",
		"regions:\n  - name: a\n    store: file:///a\nprefix: /abs",
		"regions:\n  - name: a\n    store: file:///a\npointers: dynamo",
		"regions: [",
	} {
		if _, err := Parse("test.yaml", []byte(doc)); !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q) = %v, want ErrInvalid", doc, err)
		}
	}
}

func FuzzParseStore(f *testing.F) {
	for _, s := range []string{"file:///srv", "s3://b?region=eu-west-1", "s3://?region=x&bucket_parameter=/p", "s3://b?endpoint=http://h:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, err := ParseStore(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error of the wrong kind: %v", err)
			}
			return
		}
		if st.Scheme == "file" && !filepath.IsAbs(st.Dir) {
			t.Fatalf("relative file store %q accepted", s)
		}
		if st.Scheme == "s3" && st.Bucket == "" && st.BucketParameter == "" {
			t.Fatalf("s3 store without bucket accepted: %q", s)
		}
	})
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("prefix: r\nregions:\n  - name: a\n    store: file:///a\n"))
	f.Add([]byte("regions: [{name: b, store: 's3://b?region=eu-west-1'}]\npointers: ssm:/x"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error of the wrong kind: %v", err)
			}
			return
		}
		if len(c.Regions) == 0 || strings.HasPrefix(c.Prefix, "/") {
			t.Fatalf("accepted %+v", c)
		}
	})
}
