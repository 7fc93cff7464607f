// Package peerassist is RawFlow's peer-assist proxy, one per viewer machine. The player
// plays the proxy's player port with the gateway's own paths; the proxy fetches playlists
// from the gateway (the trust root: they carry each segment's SHA-256), and segments
// through a ladder written once in Proxy.fetch and Proxy.load:
//
//	cache → the shared in-flight fetch → a neighbour that holds it (time budget,
//	stall timeout, digest check) → the gateway
//
// Bytes from a neighbour reach the player only after they match the gateway's digest; a
// neighbour that fails or lies is skipped for a while and counted. The neighbour port
// serves other proxies only what this proxy holds (or is fetching). The proxy finds
// neighbours through the gateway's tracker API (swarm.Client) and reports its counters
// with every announce.
package peerassist
