// Package peerassist is RawFlow's peer-assist proxy, one per viewer machine. The player
// plays the proxy's player port with the gateway's own paths; the proxy fetches playlists
// from the gateway (the trust root: they carry each segment's SHA-256), and segments
// through a ladder written once in Proxy.fetch and Proxy.load:
//
//	cache → the shared in-flight fetch → neighbours, until the gateway must take over
//	to land by the deadline → the gateway (completing a partial neighbour transfer)
//
// A fetch's deadline is when the player needs the segment (deadline.go): from CMCD when the
// player sends it, else inferred from the segments the proxy served it (playhead). New
// segments are prefetched as soon as they are listed; the tracker elects which proxies
// fetch each from the gateway (swarm.Registry.Lookup: seeders by rendezvous hashing per
// group), the rest get it from them. Neighbours are chosen by locality, state and measured
// throughput (choose.go). Bytes from a neighbour reach the player only after they match the
// gateway's digest; a neighbour that fails or lies is skipped for a while and counted. The
// neighbour port serves other proxies only what this proxy holds (or is fetching), and a
// proxy whose uploads keep missing their deadline stops offering them for a while
// (uplink.go). The proxy reaches the tracker through swarm.Client and reports its counters
// with every announce, split by rendition and by the group of the neighbours that fed it
// (stats.go), with what its players experienced: startups and stalls (qoe.go).
package peerassist
