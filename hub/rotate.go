package hub

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/berth-dev/berth/hub/db"
	"github.com/berth-dev/berth/hub/secrets"
)

// Reseal rewraps every stored secret's data key with box's first KEK (the
// others must include the keys they are sealed with now). Secrets' own
// ciphertexts do not change. It returns how many secrets it rewrapped.
func Reseal(ctx context.Context, d *db.DB, box *secrets.Box) (int, error) {
	all, err := d.DataPlaneSecrets(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for id, sealedJSON := range all {
		var m map[string]string
		if err := json.Unmarshal([]byte(sealedJSON), &m); err != nil {
			return n, fmt.Errorf("data plane %d: sealed secrets are not a JSON object: %w", id, err)
		}
		for k, v := range m {
			if m[k], err = box.Rewrap(ctx, v); err != nil {
				return n, fmt.Errorf("data plane %d, secret %s: %w", id, k, err)
			}
			n++
		}
		out, _ := json.Marshal(m)
		if err := d.ReplaceDataPlaneSecrets(ctx, id, sealedJSON, string(out)); err != nil {
			return n, err
		}
	}
	return n, nil
}
