package cfn

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestCacheBucket: the cache bucket is encrypted with the artifact key, TLS
// only, unversioned, and expires entries after the configured days.
func TestCacheBucket(t *testing.T) {
	for _, c := range []struct {
		days, want int
	}{{0, DefaultCacheExpirationDays}, {3, 3}, {3650, 3650}} {
		res := renderResources(t, "dataplane", Params{CacheExpirationDays: c.days})
		b := res["CacheBucket"].Properties
		if _, ok := b["VersioningConfiguration"]; ok {
			t.Errorf("days %d: the cache bucket is versioned", c.days)
		}
		rule := b["LifecycleConfiguration"].(map[string]any)["Rules"].([]any)[0].(map[string]any)
		if got := rule["ExpirationInDays"]; got != float64(c.want) {
			t.Errorf("days %d: ExpirationInDays %v, want %d", c.days, got, c.want)
		}
		if got := rule["AbortIncompleteMultipartUpload"].(map[string]any)["DaysAfterInitiation"]; got != float64(1) {
			t.Errorf("days %d: incomplete uploads aborted after %v days", c.days, got)
		}
		sse := b["BucketEncryption"].(map[string]any)["ServerSideEncryptionConfiguration"].([]any)[0].(map[string]any)["ServerSideEncryptionByDefault"].(map[string]any)
		if k, _ := sse["KMSMasterKeyID"].(map[string]any); k == nil || k["Fn::GetAtt"] == nil {
			t.Errorf("cache bucket key %v, want the artifact key", sse["KMSMasterKeyID"])
		}
		pol := res["CacheBucketPolicy"].Properties["PolicyDocument"].(map[string]any)["Statement"].([]any)[0].(map[string]any)
		if pol["Effect"] != "Deny" || !strings.Contains(toJSON(t, pol["Condition"]), "aws:SecureTransport") {
			t.Errorf("cache bucket policy %v is not TLS-only", pol)
		}
	}
	for _, days := range []int{-1, 3651} {
		if _, err := DataPlane(Params{CacheExpirationDays: days}); err == nil || !strings.Contains(err.Error(), "1 to 3650") {
			t.Errorf("days %d: %v", days, err)
		}
	}
}

func toJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
