package config_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/artifact"
	"github.com/berth-dev/berth/config"
)

// A Go program opens the regions a berth config file describes and stages
// and downloads with them, as the CLI would.
func ExampleConfig_Open() {
	dir, _ := os.MkdirTemp("", "berth-example-")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "config.yaml")
	os.WriteFile(path, []byte("prefix: releases\nregions:\n  - name: local\n    store: file://"+filepath.Join(dir, "store")+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "app.txt"), []byte("hello"), 0o644)

	ctx := context.Background()
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	regions, err := cfg.Open(ctx, config.OpenOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	client := &artifact.Client{Regions: regions, Identity: "example"}
	if _, err := client.Stage(ctx, "app", "1.0.0", filepath.Join(dir, "app.txt"), artifact.StageOptions{}); err != nil {
		fmt.Println(err)
		return
	}
	res, err := client.Download(ctx, "app", "latest", artifact.DownloadOptions{Path: filepath.Join(dir, "out.txt")})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Version, res.Region)
	// Output: 1.0.0 local
}
