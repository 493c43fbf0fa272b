package artifact_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"aead.dev/minisign"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/pointer"
	"github.com/berth-dev/berth/store/filestore"
)

// Sign a release when staging it; download only what a trusted key signed.
func Example_signedReleases() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "berth-example")
	defer os.RemoveAll(dir)
	s, _ := filestore.New(filepath.Join(dir, "store"))
	regions := []artifact.Region{{Name: "local", Store: s, Pointer: pointer.InStore{Store: s}}}

	// The publisher's key pair; berth keygen writes the same two files.
	pub, secret, _ := minisign.GenerateKey(nil)
	publisher := &artifact.Client{Regions: regions, Identity: "ci@example"}
	file := filepath.Join(dir, "app.txt")
	os.WriteFile(file, []byte("release 1.4.0\n"), 0o644)
	if _, err := publisher.Stage(ctx, "myapp", "1.4.0", file, artifact.StageOptions{SignKey: &secret}); err != nil {
		panic(err)
	}
	os.WriteFile(file, []byte("release 1.5.0, unsigned\n"), 0o644)
	if _, err := publisher.Stage(ctx, "myapp", "1.5.0", file, artifact.StageOptions{}); err != nil {
		panic(err)
	}

	// The consumer trusts the public key (the .pub file's last line).
	key, _ := artifact.ParsePublicKey(pub.String())
	consumer := &artifact.Client{Regions: regions, TrustedKeys: []minisign.PublicKey{key}}
	dl, err := consumer.Download(ctx, "myapp", "1.4.0", artifact.DownloadOptions{Path: filepath.Join(dir, "app-1.4.0.txt")})
	fmt.Println(dl.Version, err)
	_, err = consumer.Download(ctx, "myapp", "1.5.0", artifact.DownloadOptions{Path: filepath.Join(dir, "app-1.5.0.txt")})
	fmt.Println(errors.Is(err, artifact.ErrUntrusted))
	d, _ := consumer.Info(ctx, "myapp", "1.4.0")
	fmt.Println(d.SignatureStatus.Status, d.SignatureStatus.KeyID == artifact.KeyID(pub.ID()))
	// Output:
	// 1.4.0 <nil>
	// true
	// verified true
}
