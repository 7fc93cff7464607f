package swarm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// FleetPeerKey returns the peer key the gateways on this Redis share: the one stored, or
// a random one stored now if there is none (the first gateway to ask sets it; SET NX makes
// every other take that one). Peer tokens and the swarm keys that admit proxies to each
// other's neighbour ports derive from it, so a proxy of one gateway is admitted by the
// proxies of another without an operator giving each the same --peer-key.
func (r *Redis) FleetPeerKey(ctx context.Context) ([]byte, error) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	if err := r.client.SetNX(ctx, fleetPeerKey, hex.EncodeToString(b), 0).Err(); err != nil {
		return nil, fmt.Errorf("%w: fleet peer key: %w", ErrUnavailable, err)
	}
	v, err := r.client.Get(ctx, fleetPeerKey).Result()
	if err != nil {
		return nil, fmt.Errorf("%w: fleet peer key: %w", ErrUnavailable, err)
	}
	key, err := hex.DecodeString(v)
	if err != nil || len(key) < 16 {
		return nil, fmt.Errorf("fleet peer key in %s: not the hex of 16 bytes or more", fleetPeerKey)
	}
	return key, nil
}
