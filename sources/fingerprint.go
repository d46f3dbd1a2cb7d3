package sources

import (
	"crypto/sha256"
	"encoding/hex"
)

// Fingerprint stands for a secret inside a shared.Spec key: two configs with different
// passwords must not share a connection, but the key itself must be safe to print.
func Fingerprint(secret string) string {
	if secret == "" {
		return ""
	}
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:8])
}
