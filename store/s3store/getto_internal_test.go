package s3store

import "testing"

// TestRangeSizes checks the ranges GetTo asks for: few and large while much
// of the object is left, down to PartSize at its end, tiling it exactly.
func TestRangeSizes(t *testing.T) {
	for _, tc := range []struct {
		name             string
		size, part       int64
		conc             int
		maxReqs, maxLast int64
	}{
		{"1GiB default", 1 << 30, 8 << 20, 4, 40, 8 << 20},
		{"1GiB one worker", 1 << 30, 8 << 20, 1, 40, 8 << 20},
		{"20MiB", 20 << 20, 8 << 20, 4, 3, 8 << 20},
		{"large parts", 1 << 30, 100 << 20, 4, 11, 100 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(nil, "b", "", Options{PartSize: tc.part, Concurrency: tc.conc})
			off, reqs := min(tc.part, tc.size), int64(1)
			var last, largest int64
			for off < tc.size {
				n := min(s.rangeSize(tc.size-off), tc.size-off)
				if n < min(tc.part, tc.size-off) || n > max(tc.part, maxRangeSize) {
					t.Fatalf("range of %d bytes at %d", n, off)
				}
				largest = max(largest, n)
				off += n
				last = n
				reqs++
			}
			if off != tc.size {
				t.Fatalf("ranges end at %d, object is %d", off, tc.size)
			}
			if reqs > tc.maxReqs || last > tc.maxLast {
				t.Errorf("%d requests, last range %d bytes; want at most %d and %d", reqs, last, tc.maxReqs, tc.maxLast)
			}
			if tc.size >= 1<<30 && largest < max(tc.part, maxRangeSize) {
				t.Errorf("largest range %d bytes", largest)
			}
			t.Logf("%d requests", reqs)
		})
	}
}
