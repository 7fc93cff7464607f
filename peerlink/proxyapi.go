package peerlink

import (
	"fmt"

	"github.com/pion/stun/v3"
	"github.com/pion/webrtc/v4"
)

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
// (a proxy learns them from the gateway after it starts). A server whose URL does not
// parse is left out, and reported.
func (l *Link) SetICEServers(servers []ICEServer) error {
	out, bad := toWebRTC(servers)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cfg.ICEServers = servers
	l.iceServers = out
	return bad
}

// toWebRTC converts servers for pion, leaving out a server with a URL that does not parse;
// the error names the last such URL.
func toWebRTC(servers []ICEServer) ([]webrtc.ICEServer, error) {
	out := make([]webrtc.ICEServer, 0, len(servers))
	var bad error
	for _, s := range servers {
		ok := len(s.URLs) > 0
		for _, u := range s.URLs {
			if _, err := stun.ParseURI(u); err != nil {
				ok, bad = false, fmt.Errorf("peerlink: ICE server %q: %w", u, err)
			}
		}
		if ok {
			out = append(out, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
		}
	}
	return out, bad
}
