//go:build e2e

package main

// kill closes the node's servers at once, cutting every connection mid-transfer, as a
// crash would; run then ends (and the proxy leaves its swarms, which a crash would not).
// Only tests kill a node in this process (rawflow swarm's churn is loadtest's, on
// peerassist.Node).
func (n *peerNode) kill() { n.node.Kill() }
