package swarm

import (
	"crypto/sha1"
	"encoding/hex"
	"slices"
)

// SeedScore is the rendezvous-hashing score of peer id for a segment: the hex SHA-1 of
// "digest:id". The seeders of a segment are the peers with the highest scores (compared as
// strings, which for equal-length hex is numeric order). SHA-1 serves here only to spread
// choices evenly; the Redis registry computes the same function with redis.sha1hex, so
// both registries pick the same seeders from the same peers.
func SeedScore(digest, id string) string {
	sum := sha1.Sum([]byte(digest + ":" + id))
	return hex.EncodeToString(sum[:])
}

// seeders returns the k ids with the highest SeedScore for digest, best first.
func seeders(digest string, ids []string, k int) []string {
	type scored struct{ id, score string }
	all := make([]scored, len(ids))
	for i, id := range ids {
		all[i] = scored{id, SeedScore(digest, id)}
	}
	slices.SortFunc(all, func(a, b scored) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return 0
	})
	out := make([]string, 0, min(k, len(all)))
	for _, s := range all[:min(k, len(all))] {
		out = append(out, s.id)
	}
	return out
}
