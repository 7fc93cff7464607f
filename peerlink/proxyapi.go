package peerlink

import "slices"

// Connected reports whether this Link's peer connection to remote to is up: a Dial then
// opens a stream on it without signalling.
func (l *Link) Connected(to string) bool {
	l.mu.Lock()
	p := l.out[to]
	l.mu.Unlock()
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.isUp && !p.closed
}

// SetICEServers sets the STUN and TURN servers of the peer connections made from now on
// (a proxy learns them from the gateway after it starts).
func (l *Link) SetICEServers(servers []ICEServer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cfg.ICEServers = slices.Clone(servers)
}
