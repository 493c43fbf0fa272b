package hub

import (
	"fmt"
	"strings"
	"testing"

	"github.com/berth-dev/berth/artifact"
)

func TestPageVersions(t *testing.T) {
	var list []artifact.VersionInfo
	for _, v := range []string{"1.0.0", "1.1.0-rc.1", "1.1.0", "2.0.0", "10.0.0"} {
		list = append(list, artifact.VersionInfo{Version: v})
	}
	for _, tc := range []struct {
		newest       bool
		cursor       string
		limit        int
		want, wantNx string
	}{
		{false, "", 0, "1.0.0 1.1.0-rc.1* 1.1.0 2.0.0 10.0.0", ""},
		{true, "", 0, "10.0.0 2.0.0 1.1.0 1.1.0-rc.1* 1.0.0", ""},
		{true, "", 2, "10.0.0 2.0.0", "2.0.0"},
		{true, "2.0.0", 2, "1.1.0 1.1.0-rc.1*", "1.1.0-rc.1"},
		{true, "1.1.0-rc.1", 2, "1.0.0", ""},
		{false, "1.1.0", 2, "2.0.0 10.0.0", ""},
		{false, "", 5, "1.0.0 1.1.0-rc.1* 1.1.0 2.0.0 10.0.0", ""},
		{false, "", 4, "1.0.0 1.1.0-rc.1* 1.1.0 2.0.0", "2.0.0"},
		{true, "1.5.0", 10, "1.1.0 1.1.0-rc.1* 1.0.0", ""}, // a cursor no longer listed still pages
		{true, "1.0.0", 10, "", ""},
	} {
		page, next := pageVersions(list, tc.newest, tc.cursor, tc.limit)
		var got []string
		for _, v := range page {
			s := v.Version
			if v.Prerelease {
				s += "*"
			}
			got = append(got, s)
		}
		if strings.Join(got, " ") != tc.want || next != tc.wantNx {
			t.Errorf("page(newest=%v, cursor=%q, limit=%d) = %q next %q, want %q next %q", tc.newest, tc.cursor, tc.limit, got, next, tc.want, tc.wantNx)
		}
	}
}

// BenchmarkPageVersions10k: the hub's share of a versions page of a project
// with 10,000 versions, after the stores' listing.
func BenchmarkPageVersions10k(b *testing.B) {
	list := make([]artifact.VersionInfo, 10000)
	for i := range list {
		list[i] = artifact.VersionInfo{Version: fmt.Sprintf("%d.%d.%d", i/1000, i/10%100, i%10), Regions: []string{"a", "b"}}
	}
	for b.Loop() {
		page, next := pageVersions(list, true, "5.0.0", 50)
		if len(page) != 50 || next == "" {
			b.Fatal(len(page), next)
		}
	}
}
