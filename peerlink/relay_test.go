package peerlink

import (
	"context"
	"net"
	"net/http"
	"testing"

	"github.com/pion/turn/v5"
)

// startTURN runs a TURN server on 127.0.0.1 that relays from 127.0.0.1, until the test ends.
func startTURN(t *testing.T, user, pass string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm: "rawflow.test",
		AuthHandler: func(ra *turn.RequestAttributes) (string, []byte, bool) {
			if ra.Username != user {
				return "", nil, false
			}
			return ra.Username, turn.GenerateAuthKey(ra.Username, ra.Realm, pass), true
		},
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn: pc,
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{
				RelayAddress: net.ParseIP("127.0.0.1"),
				Address:      "127.0.0.1",
			},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return pc.LocalAddr().String()
}

// TestRelayThroughTURN: with RelayOnly, streams travel through the TURN server, and
// ConnType and Stats say so.
func TestRelayThroughTURN(t *testing.T) {
	addr := startTURN(t, "viewer", "secret")
	relay := func(c *Config) {
		c.RelayOnly = true
		c.ICEServers = []ICEServer{{
			URLs:     []string{"turn:" + addr + "?transport=udp"},
			Username: "viewer", Credential: "secret",
		}}
	}
	var r router
	a, b := r.newLink(t, "a", relay), r.newLink(t, "b", relay)
	body := pattern(300 << 10)
	serveHTTP(t, b, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(body)
	}))
	var types []string
	c := client(t, a, nil)
	c.Transport.(*http.Transport).DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
		conn, err := a.Dial(ctx, "b")
		if err == nil {
			types = append(types, ConnType(conn))
		}
		return conn, err
	}
	if got := get(t, c, "http://b/relayed"); len(got) != len(body) {
		t.Fatalf("got %d bytes over the relay, want %d", len(got), len(body))
	}
	if len(types) != 1 || types[0] != TypeRelay {
		t.Errorf("ConnType over TURN: %v, want [relay]", types)
	}
	if s := a.Stats(); s.PeersUp[TypeRelay] != 1 || s.BytesReceived[TypeRelay] < uint64(len(body)) {
		t.Errorf("stats over TURN: %+v", s)
	}
}
