package artifact_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/pointer"
	"github.com/berth-dev/berth/store/filestore"
)

// Stage a file to two regions and download the latest version back.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "berth-example")
	defer os.RemoveAll(dir)

	var regions []artifact.Region
	for _, name := range []string{"eu-west-1", "us-east-1"} {
		s, err := filestore.New(filepath.Join(dir, name))
		if err != nil {
			panic(err)
		}
		regions = append(regions, artifact.Region{Name: name, Store: s, Pointer: pointer.InStore{Store: s}})
	}
	c := &artifact.Client{Regions: regions, Identity: "ci@example"}

	file := filepath.Join(dir, "app.txt")
	os.WriteFile(file, []byte("release 1.4.0\n"), 0o644)
	res, err := c.Stage(ctx, "myapp", "1.4.0", file, artifact.StageOptions{Metadata: map[string]string{"commit": "abc123"}})
	if err != nil {
		panic(err)
	}
	for _, r := range res.Regions {
		fmt.Println(r.Region, r.Status)
	}

	dl, err := c.Download(ctx, "myapp", artifact.Latest, artifact.DownloadOptions{Dir: filepath.Join(dir, "out")})
	if err != nil {
		panic(err)
	}
	fmt.Println(dl.Version, "from", dl.Region, filepath.Base(dl.Path))
	// Output:
	// eu-west-1 staged
	// us-east-1 staged
	// 1.4.0 from eu-west-1 app.txt
}

// Exists answers whether a version is staged anywhere.
func ExampleClient_Exists() {
	dir, _ := os.MkdirTemp("", "berth-example")
	defer os.RemoveAll(dir)
	s, _ := filestore.New(dir)
	c := &artifact.Client{Regions: []artifact.Region{{Name: "local", Store: s, Pointer: pointer.InStore{Store: s}}}}
	ok, err := c.Exists(context.Background(), "myapp", "2.0.0")
	fmt.Println(ok, err)
	// Output: false <nil>
}

// Versions are compared by SemVer precedence.
func ExampleCompareVersions() {
	fmt.Println(artifact.CompareVersions("1.10.0", "1.9.0"), artifact.CompareVersions("2.0.0-rc.1", "2.0.0"))
	// Output: 1 -1
}
