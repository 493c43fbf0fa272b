package awsconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Path returns the config file the AWS CLI reads: AWS_CONFIG_FILE, else
// ~/.aws/config.
func Path(env func(string) string) (string, error) {
	if p := env("AWS_CONFIG_FILE"); p != "" {
		return p, nil
	}
	home := env("HOME")
	if home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil {
			return "", fmt.Errorf("find the AWS config file: set HOME or AWS_CONFIG_FILE: %w", err)
		}
	}
	return filepath.Join(home, ".aws", "config"), nil
}

// Read returns the file at path, or an empty file when there is none.
func Read(path string) (*File, []byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &File{newline: "\n", finalNewline: true}, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read AWS config file: %w", err)
	}
	f, err := Parse(data)
	if err != nil {
		return nil, nil, fmt.Errorf("read AWS config file %s: %w", path, err)
	}
	return f, data, nil
}

// BackupSuffix is the layout of the timestamp in a backup's name,
// PATH.bak-20261202T201500Z.
const BackupSuffix = "20060102T150405Z"

// Write replaces the file at path with data: a copy of the old file goes
// to PATH.bak-TIMESTAMP first, then data is written to a temporary file
// beside it with the old file's mode (0600 for a new file), synced, and
// renamed over it, so a crash leaves the old or the new file, never half
// of one. A symbolic link is followed, so a config kept in a dotfiles
// repository stays there. It returns the backup's path ("" when there was
// no file).
func Write(path string, data []byte, now time.Time) (string, error) {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	mode := fs.FileMode(0o600)
	old, err := os.ReadFile(path)
	switch {
	case err == nil:
		fi, err := os.Stat(path)
		if err != nil {
			return "", fmt.Errorf("write AWS config file: %w", err)
		}
		mode = fi.Mode().Perm()
	case errors.Is(err, fs.ErrNotExist):
		old = nil
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return "", fmt.Errorf("write AWS config file: %w", err)
		}
	default:
		return "", fmt.Errorf("write AWS config file: %w", err)
	}
	backup := ""
	if old != nil {
		// Two runs in one second keep both backups: .bak-T, .bak-T.1, ...
		base := path + ".bak-" + now.UTC().Format(BackupSuffix)
		for i := 0; ; i++ {
			backup = base
			if i > 0 {
				backup = fmt.Sprintf("%s.%d", base, i)
			}
			err := writeAtomic(backup, old, mode, true)
			if err == nil {
				break
			}
			if !errors.Is(err, fs.ErrExist) || i == 99 {
				return "", fmt.Errorf("back up AWS config file to %s (nothing was changed): %w", backup, err)
			}
		}
	}
	if err := writeAtomic(path, data, mode, false); err != nil {
		return backup, fmt.Errorf("write AWS config file %s (the old one is unchanged): %w", path, err)
	}
	return backup, nil
}

// writeAtomic writes data to path through a synced temporary file; with
// exclusive it refuses to replace an existing file.
func writeAtomic(path string, data []byte, mode fs.FileMode, exclusive bool) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if exclusive {
		// A link fails when path exists, unlike a rename.
		if err := os.Link(tmp.Name(), path); err != nil {
			return err
		}
	} else if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // makes the rename durable where the platform allows
		d.Close()
	}
	return nil
}
