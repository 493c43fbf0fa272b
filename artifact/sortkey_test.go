package artifact_test

import (
	"bytes"
	"testing"

	"github.com/berth-dev/berth/artifact"
)

func sortKey(t testing.TB, s string) []byte {
	t.Helper()
	v, err := artifact.ParseVersion(s)
	if err != nil {
		t.Fatal(err)
	}
	return artifact.SortKey(v)
}

// The order of semver.org's precedence examples, and the cases an encoding
// gets wrong first: numbers wider than a digit, a release after its
// prereleases, a shorter identifier list first, digits beyond uint64
// (compared as text, as Compare does), build metadata as a tiebreaker.
func TestSortKeyOrder(t *testing.T) {
	ordered := []string{
		"0.0.0",
		"0.0.1",
		"0.9.0",
		"0.10.0",
		"1.0.0-0",
		"1.0.0-1",
		"1.0.0-2",
		"1.0.0-10",
		"1.0.0-18446744073709551615",
		"1.0.0--",
		"1.0.0-18446744073709551616", // too wide for uint64: alphanumeric, after "-" as text
		"1.0.0-A",
		"1.0.0-a",
		"1.0.0-alpha",
		"1.0.0-alpha.1",
		"1.0.0-alpha.1.0",
		"1.0.0-alpha.beta",
		"1.0.0-alpha0",
		"1.0.0-beta",
		"1.0.0-beta.2",
		"1.0.0-beta.11",
		"1.0.0-rc.1",
		"1.0.0-rc.1+build.1",
		"1.0.0",
		"1.0.0+0",
		"1.0.0+a",
		"1.0.0+a.b",
		"1.0.1-rc.1",
		"1.0.1",
		"1.2.0",
		"1.10.0",
		"2.0.0",
		"10.0.0",
		"18446744073709551615.0.0",
	}
	for i := 1; i < len(ordered); i++ {
		a, b := ordered[i-1], ordered[i]
		if c := artifact.CompareVersions(a, b); c >= 0 {
			t.Fatalf("test table: CompareVersions(%s, %s) = %d, want < 0", a, b, c)
		}
		if c := bytes.Compare(sortKey(t, a), sortKey(t, b)); c >= 0 {
			t.Errorf("bytes.Compare(SortKey(%s), SortKey(%s)) = %d, want < 0", a, b, c)
		}
	}
	if !bytes.Equal(sortKey(t, "1.2.3-rc.1"), sortKey(t, "1.2.3-rc.1")) {
		t.Error("equal versions, different keys")
	}
}

// FuzzSortKey: for any two valid versions the keys order as CompareVersions.
func FuzzSortKey(f *testing.F) {
	for _, p := range [][2]string{
		{"1.0.0", "1.0.0-rc.1"}, {"1.0.0-alpha", "1.0.0-alpha.1"}, {"1.0.0-1", "1.0.0-a"}, {"1.0.0-99999999999999999999", "1.0.0-9"},
		{"1.0.0+b", "1.0.0+a"}, {"1.0.0-x.7.z.92", "1.0.0-x-y-z.--"}, {"0.0.1", "0.1.0"},
	} {
		f.Add(p[0], p[1])
	}
	sign := func(c int) int {
		switch {
		case c < 0:
			return -1
		case c > 0:
			return 1
		}
		return 0
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		va, errA := artifact.ParseVersion(a)
		vb, errB := artifact.ParseVersion(b)
		if errA != nil || errB != nil {
			return
		}
		want := sign(artifact.CompareVersions(a, b))
		if got := bytes.Compare(artifact.SortKey(va), artifact.SortKey(vb)); got != want {
			t.Errorf("bytes.Compare(SortKey(%q), SortKey(%q)) = %d, CompareVersions = %d", a, b, got, want)
		}
	})
}
