package peerassist

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/swarm"
)

// TestHeldFetchWaitsForTheSwarm: a member whose parent is still pulling a segment through
// (103) when its swarm rung ends asks the gateway as a member (with its group and the time
// its player has left); a gateway whose uplink is saturated holds the fetch back (503,
// RawFlow-Held), and the member waits for its parent, which then delivers: one gateway
// request, no copy from it, and the player gets the segment.
func TestHeldFetchWaitsForTheSwarm(t *testing.T) {
	gw := newFakeGateway(1)
	seg := gw.window.Segments[0]
	refused := make(chan struct{})
	var mu sync.Mutex
	var asked []http.Header
	gw.intercept = func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, r.Header.Clone())
		if r.Header.Get(swarm.FetchHeader) != swarm.FetchMember {
			return false
		}
		w.Header().Set(swarm.HeldHeader, "1")
		w.Header().Set("Retry-After", "1")
		http.Error(w, "the cell is getting it", http.StatusServiceUnavailable)
		close(refused)
		return true
	}
	var parentAsked atomic.Int64
	parent := neighbourFunc(t, func(w http.ResponseWriter, r *http.Request) {
		parentAsked.Add(1)
		w.WriteHeader(http.StatusEarlyHints) // pulling it through
		select {
		case <-refused: // by now its root delivered
			_, _ = w.Write(gw.data[seg.Name])
		case <-r.Context().Done():
		}
	})
	gw.setSources(swarm.Source{ID: "parent", Addr: parent})
	p := startProxy(t, gw, func(c *Config) {
		c.Group = "siteA"
		c.NeighbourBudget = 100 * time.Millisecond // the first swarm rung ends early
	})
	// A player with 20 s of buffer: time to wait for the swarm.
	resp, body := httpGet(t, p.player.URL+"/live/tv/"+seg.Name+"?CMCD=bl%3D20000")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, string(gw.data[seg.Name]), body)

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, asked, 1, "the gateway was asked once, and held the fetch back")
	assert.Equal(t, swarm.FetchMember, asked[0].Get(swarm.FetchHeader))
	assert.Equal(t, "siteA", asked[0].Get(swarm.GroupHeader))
	need, err := strconv.Atoi(asked[0].Get(swarm.NeedHeader))
	require.NoError(t, err)
	assert.Greater(t, need, int(swarm.UrgentNeed/time.Millisecond), "the player's time left, well above urgent")
	st := p.Status().Channels["tv"]
	assert.Equal(t, int64(1), st.Held)
	assert.Equal(t, seg.Size, st.BytesFromPeers)
	assert.Zero(t, st.BytesFromGateway)
	assert.Equal(t, int64(2), parentAsked.Load(), "the parent, then the parent again after the refusal")
}

// TestHeldFetchEndsAtTheGateway: held back, and no source delivers; the member asks the
// gateway again, plainly (never refused), and the player gets the segment: a refusal
// never leaves a player without it.
func TestHeldFetchEndsAtTheGateway(t *testing.T) {
	for _, tc := range []struct {
		name   string
		buffer string // the player's CMCD bl, ms
	}{
		// 2 s of buffer: the wait after the refusal ends 1.5 s before the player needs it.
		{"urgent soon", "2000"},
		// 30 s of buffer: the wait ends while the fetch's own bound leaves the gateway its
		// turn (GatewayTimeout), not 1.5 s before the player needs it.
		{"buffer beyond the fetch's bound", "30000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			dead := ln.Addr().String()
			require.NoError(t, ln.Close())
			gw := newFakeGateway(1)
			seg := gw.window.Segments[0]
			var mu sync.Mutex
			var roles []string
			gw.intercept = func(w http.ResponseWriter, r *http.Request) bool {
				mu.Lock()
				defer mu.Unlock()
				roles = append(roles, r.Header.Get(swarm.FetchHeader))
				if r.Header.Get(swarm.FetchHeader) != swarm.FetchMember {
					return false
				}
				w.Header().Set(swarm.HeldHeader, "1")
				http.Error(w, "the cell is getting it", http.StatusServiceUnavailable)
				return true
			}
			gw.setSources(source(dead))
			p := startProxy(t, gw, func(c *Config) { c.NeighbourBudget, c.GatewayTimeout = 500*time.Millisecond, 2*time.Second })
			resp, body := httpGet(t, p.player.URL+"/live/tv/"+seg.Name+"?CMCD=bl%3D"+tc.buffer)
			require.Equal(t, http.StatusOK, resp.StatusCode, body)
			assert.Equal(t, string(gw.data[seg.Name]), body)
			mu.Lock()
			defer mu.Unlock()
			assert.Equal(t, []string{swarm.FetchMember, ""}, roles, "held back, then asked plainly")
			assert.Equal(t, int64(1), p.Status().Channels["tv"].Held)
		})
	}
}

// TestRootFetchSaysSo: the root of a segment's stripe tells the gateway it fetches for its
// cell (so that the gateway may hold back its cell's other copies).
func TestRootFetchSaysSo(t *testing.T) {
	gw := newFakeGateway(1)
	seg := gw.window.Segments[0]
	var mu sync.Mutex
	var hdr http.Header
	gw.intercept = func(_ http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		hdr = r.Header.Clone()
		return false
	}
	p := startProxy(t, gw, func(c *Config) { c.Group = "siteB" }) // no sources: root
	resp, body := httpGet(t, p.player.URL+"/live/tv/"+seg.Name)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, swarm.FetchRoot, hdr.Get(swarm.FetchHeader))
	assert.Equal(t, "siteB", hdr.Get(swarm.GroupHeader))
}

// TestGatewayTransferResumed: a gateway transfer cut short after half the segment is
// resumed with Range from the bytes received: the gateway sends the segment's bytes once.
func TestGatewayTransferResumed(t *testing.T) {
	gw := newFakeGateway(1)
	seg := gw.window.Segments[0]
	data := gw.data[seg.Name]
	half := len(data) / 2
	var mu sync.Mutex
	var ranges []string
	sent := 0
	gw.intercept = func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		ranges = append(ranges, r.Header.Get("Range"))
		if len(ranges) > 1 {
			sent += len(data) - half // http.ServeContent answers the range
			return false
		}
		// The first transfer: half the bytes, then the connection breaks.
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		_, _ = w.Write(data[:half])
		sent += half
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close()
		}
		return true
	}
	p := startProxy(t, gw, nil)
	resp, body := httpGet(t, p.player.URL+"/live/tv/"+seg.Name)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, string(data), body)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"", "bytes=" + strconv.Itoa(half) + "-" + strconv.Itoa(len(data)-1)}, ranges)
	assert.Equal(t, len(data), sent, "every byte sent once")
	st := p.Status().Channels["tv"]
	assert.Equal(t, int64(1), st.GatewayResumes)
	assert.Equal(t, seg.Size, st.BytesFromGateway)
}
