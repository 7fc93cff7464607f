// Package swarm is the contract between the gateway and the peer-assist proxies.
//
// It holds the wire types of the tracker API (wire.go: the paths, request and response
// bodies and their validation), the registry in which the gateway keeps
// the swarm's shared state (live peers, who holds or is fetching which segment, per-channel
// delivery counters), and Rank, the pure function that orders a segment's holders for an
// asking peer. Lookup also elects who fetches each segment from the gateway: its seeders,
// the peers of the asker's group with the highest SeedScore (rendezvous hashing).
//
// The registry has two implementations that pass one conformance suite: Memory, for a single
// gateway, and Redis, for a fleet of gateways sharing one Redis. The Redis key layout and
// its expiry rules are documented in keys.go. Both decide expiry against Options.Now, so
// tests move time with a fake clock instead of sleeping. Every Redis failure wraps
// ErrUnavailable, on which callers degrade to "no neighbours, fetch from the gateway";
// invalid input wraps ErrBadRequest.
//
// This package is the only importer of go-redis.
package swarm
