package peerlink

import (
	"strings"
	"testing"
)

// TestSetICEServersAfterNew: servers set after New (a proxy learns them from its gateway's
// hello) are the ones later peer connections gather from; Connected follows the link.
func TestSetICEServersAfterNew(t *testing.T) {
	addr, _ := startSTUN(t)
	offers := make(chan Signal, 1)
	r := router{drop: func(_ string, s Signal) bool {
		if s.Kind == KindOffer {
			select {
			case offers <- s:
			default:
			}
		}
		return false
	}}
	a, _ := r.newLink(t, "a", nil), r.newLink(t, "b", nil)
	if err := a.SetICEServers([]ICEServer{{URLs: []string{"stun:"}}, {URLs: []string{"stun:" + addr.String()}}}); err == nil {
		t.Error("SetICEServers took a malformed URL without a word")
	}
	if a.Connected("b") {
		t.Error("connected before any dial")
	}
	conn, err := a.Dial(t.Context(), "b")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if !a.Connected("b") {
		t.Error("not connected after a dial")
	}
	if offer := <-offers; !strings.Contains(offer.SDP, "typ srflx") {
		t.Errorf("offer has no srflx candidate from the servers set after New:\n%s", offer.SDP)
	}
}
