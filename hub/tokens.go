package hub

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/berth-dev/berth/errkind"
	"github.com/berth-dev/berth/hub/db"
)

// TokenPrefix starts every API token, so secret scanners recognise leaked
// ones.
const TokenPrefix = "berth_"

// errUnauthenticated: no credentials, or credentials the hub does not
// accept. Deliberately one message for every case, so a caller cannot tell
// a revoked token from a mistyped one.
var errUnauthenticated = errkind.New("unauthenticated: sign in, or send Authorization: Bearer berth_...", errkind.PermissionDenied)

// newToken returns a token (berth_LOOKUP_SECRET) and its record. Only a
// hash of the token is stored: a token has 256 random bits, so a fast hash
// is enough, and a database dump gives nothing to replay.
func newToken(userID int64, name string, now time.Time, ttl time.Duration) (string, *db.Token, error) {
	lookup := make([]byte, 8)
	secret := make([]byte, 32)
	if _, err := rand.Read(lookup); err != nil {
		return "", nil, err
	}
	if _, err := rand.Read(secret); err != nil {
		return "", nil, err
	}
	token := TokenPrefix + hex.EncodeToString(lookup) + "_" + base64.RawURLEncoding.EncodeToString(secret)
	return token, &db.Token{UserID: userID, LookupID: hex.EncodeToString(lookup), Hash: hashToken(token), Name: name,
		Created: now, Expires: now.Add(ttl)}, nil
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// authenticate returns the user a bearer token belongs to.
func (s *Server) authenticate(ctx context.Context, token string) (*db.User, error) {
	rest, ok := strings.CutPrefix(token, TokenPrefix)
	lookup, _, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || len(lookup) != 16 {
		return nil, errUnauthenticated
	}
	t, err := s.DB.TokenByLookupID(ctx, lookup)
	if err != nil {
		if errkind.Of(err) == errkind.NotFound {
			return nil, errUnauthenticated
		}
		return nil, err
	}
	now := s.now()
	if subtle.ConstantTimeCompare([]byte(hashToken(token)), []byte(t.Hash)) != 1 || !t.Revoked.IsZero() || !now.Before(t.Expires) {
		return nil, errUnauthenticated
	}
	if now.Sub(t.LastUsed) > time.Minute { // one write a minute per token is enough
		if err := s.DB.TouchToken(ctx, t.ID, now); err != nil {
			s.log().Warn("record token use", "token_id", t.ID, "err", err)
		}
	}
	u, err := s.DB.UserByID(ctx, t.UserID)
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	return u, nil
}
