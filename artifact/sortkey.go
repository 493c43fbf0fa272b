package artifact

import (
	"encoding/binary"
	"strconv"
)

// Tags of the sort key; see SortKey.
const (
	keyPrerelease = 0x00 // after PATCH: identifiers follow; below keyRelease
	keyRelease    = 0x01
	keyListEnd    = 0x00 // ends the identifiers: a shorter list sorts first
	keyNumeric    = 0x01 // numeric identifiers sort below alphanumeric ones
	keyAlnum      = 0x02
	keyAlnumEnd   = 0x00 // below every character an identifier may hold
)

// SortKey encodes v so that bytes.Compare of two keys agrees with
// Version.Compare: a database orders and pages versions by the key as
// plain bytes, whatever its collation. MAJOR, MINOR and PATCH are 8 bytes
// big-endian; a release sorts after its prereleases; each prerelease
// identifier is tagged numeric (8 bytes big-endian) or alphanumeric (its
// text, then 0x00); the build metadata, compared as text, ends the key.
func SortKey(v Version) []byte {
	key := make([]byte, 0, 25+len(v.raw)+8*len(v.Pre))
	key = binary.BigEndian.AppendUint64(key, v.Major)
	key = binary.BigEndian.AppendUint64(key, v.Minor)
	key = binary.BigEndian.AppendUint64(key, v.Patch)
	if len(v.Pre) == 0 {
		key = append(key, keyRelease)
	} else {
		key = append(key, keyPrerelease)
		for _, id := range v.Pre {
			// As compareIdent: numeric is what parses as a uint64; a
			// longer run of digits compares as text.
			if n, err := strconv.ParseUint(id, 10, 64); err == nil {
				key = append(key, keyNumeric)
				key = binary.BigEndian.AppendUint64(key, n)
				continue
			}
			key = append(key, keyAlnum)
			key = append(key, id...)
			key = append(key, keyAlnumEnd)
		}
		key = append(key, keyListEnd)
	}
	return append(key, v.Build...)
}
