package pointer_test

import (
	"testing"

	"github.com/berth-dev/berth/store/filestore"
)

func newFileStore(t *testing.T) *filestore.Store {
	s, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}
