// Package loadtest is the swarm benchmark behind `rawflow swarm`: it measures offload and
// what viewers experience when many assisted viewers play one channel of a gateway. Run
// starts N peer-assist proxies in this process (peerassist.Node), each played by a simulated
// hls.js-like player (package loadtest/simplayer), plus a few players on the gateway directly
// as the baseline for join time; viewers join over a ramp, some may be replaced during the
// run (churn, every other one killed mid-transfer) or upload slowly, and the Report sums
// what the players and proxies counted. Everything talks real HTTP, on 127.0.0.1 unless the
// neighbour ports are bound elsewhere (Config.PeerHost, for proxies in several network
// namespaces: bench/sites.sh).
//
// It is a tool, not part of the serving path: only cmd/rawflow imports it, and the gateway
// is the caller's to start (Config.GatewayURL).
package loadtest
