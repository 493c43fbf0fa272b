package policy

import "errors"

// The cache kinds are for `berth cache` on a region's cache store: Bucket
// is the cache bucket and Prefix the key prefix of the cache store in it
// (the configuration's prefix).
const (
	KindCacheRead  Kind = "cache-read"
	KindCacheWrite Kind = "cache-write"
)

// cachePolicy grants what package cache does to its layout
// (PREFIX/keys/KEY.json entries, PREFIX/data/KEY/SHA256.tar.zst archives):
//
//	kind         action                          resource                        why
//	cache-read   s3:ListBucket                   bucket, s3:prefix keys/ or data/   restore-key prefix lookups; telling a missing key from a refused one
//	cache-read   s3:GetObject                    PREFIX/keys/*, PREFIX/data/*    read entries (GET and HEAD) and archives
//	cache-read   kms:Decrypt                     the key, via S3 only            read SSE-KMS objects
//	cache-write  (everything cache-read has)                                     save checks whether the key exists
//	cache-write  s3:PutObject                    PREFIX/keys/*.json, PREFIX/data/*   store archives and commit entries (create-only)
//	cache-write  s3:AbortMultipartUpload         PREFIX/data/*                   clean up a failed archive upload
//	cache-write  kms:GenerateDataKey             the key, via S3 only            write SSE-KMS objects
//
// No s3:DeleteObject: a save that loses the race for a key leaves its
// archive, and the cache bucket's expiration rule removes it.
func cachePolicy(p Params, write bool) (*Document, error) {
	if p.Bucket == "" {
		return nil, errors.New("a bucket (the cache bucket) is required")
	}
	pre := p.keyPrefix()
	list := allow("ListCacheKeys", []string{"s3:ListBucket"}, p.bucketARN())
	list.Condition = Condition{"StringLike": {"s3:prefix": {pre + "data/*", pre + "keys/*"}}}
	d := doc(list, allow("ReadCache", []string{"s3:GetObject"}, p.objectARN("data/*"), p.objectARN("keys/*")))
	if write {
		d.Statement = append(d.Statement,
			allow("SaveArchives", []string{"s3:AbortMultipartUpload", "s3:PutObject"}, p.objectARN("data/*")),
			allow("CommitEntries", []string{"s3:PutObject"}, p.objectARN("keys/*.json")),
		)
	}
	if p.KMSKeyARN != "" {
		actions := []string{"kms:Decrypt"}
		if write {
			actions = append(actions, "kms:GenerateDataKey")
		}
		s := kmsStatement(p, actions...)
		s.Sid = "UseCacheKey"
		d.Statement = append(d.Statement, s)
	}
	return d, nil
}
