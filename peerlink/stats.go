package peerlink

import (
	"sync"
	"sync/atomic"
	"time"
)

// Connection types, as reported by ConnType and used as keys of Stats maps.
const (
	TypeHost  = "host"
	TypeSrflx = "srflx"
	TypePrflx = "prflx"
	TypeRelay = "relay"
)

var connTypes = [...]string{TypeHost, TypeSrflx, TypePrflx, TypeRelay}

// connectBuckets are the upper bounds, in milliseconds, of the ICE connect time histogram;
// a last bucket counts the rest.
var connectBuckets = [...]int64{50, 100, 250, 500, 1000, 2500, 5000}

// Stats is a snapshot of a Link's counters.
type Stats struct {
	// PeersUp is how many peer connections are up now, by connection type.
	PeersUp map[string]int `json:"peersUp"`
	// Peers is how many peer connections exist now (up or connecting), both directions.
	Peers int `json:"peers"`
	// Connected and Failed count peer connections that came up and that did not
	// (handshake timeout, ICE failure, no answer).
	Connected uint64 `json:"connected"`
	Failed    uint64 `json:"failed"`
	// Refused counts offers ignored (MaxPeers, too many pending from one remote, closed)
	// and Dials refused at MaxPeers.
	Refused uint64 `json:"refused"`
	// AcceptDropped counts inbound streams closed because the Accept queue was full.
	AcceptDropped uint64 `json:"acceptDropped"`
	// ConnectLastMs and ConnectMeanMs: time from creating a peer connection to ICE+DTLS up.
	ConnectLastMs float64 `json:"connectLastMs"`
	ConnectMeanMs float64 `json:"connectMeanMs"`
	// ConnectHist counts connect times by ConnectBucketsMs upper bound; its last entry
	// counts the slower ones.
	ConnectHist      []uint64 `json:"connectHist"`
	ConnectBucketsMs []int64  `json:"connectBucketsMs"`
	// BytesSent and BytesReceived are stream payload bytes by connection type.
	BytesSent     map[string]uint64 `json:"bytesSent"`
	BytesReceived map[string]uint64 `json:"bytesReceived"`
}

type typeCounters struct {
	sent, received atomic.Uint64
}

// counters are a Link's statistics; peers up are counted from the Link's maps.
type counters struct {
	connected, failed, refused, dropped atomic.Uint64
	types                               [len(connTypes)]typeCounters

	mu          sync.Mutex // guards the following fields
	connectLast time.Duration
	connectSum  time.Duration
	hist        [len(connectBuckets) + 1]uint64
}

func (c *counters) byType(t string) *typeCounters {
	for i, name := range connTypes {
		if name == t {
			return &c.types[i]
		}
	}
	return &c.types[0]
}

func (c *counters) connectedIn(d time.Duration) {
	c.connected.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.connectLast = d
	c.connectSum += d
	i := 0
	for i < len(connectBuckets) && d.Milliseconds() > connectBuckets[i] {
		i++
	}
	c.hist[i]++
}

func (c *counters) snapshot(up map[string]int, peers int) Stats {
	s := Stats{
		PeersUp:          up,
		Peers:            peers,
		Connected:        c.connected.Load(),
		Failed:           c.failed.Load(),
		Refused:          c.refused.Load(),
		AcceptDropped:    c.dropped.Load(),
		ConnectBucketsMs: append([]int64(nil), connectBuckets[:]...),
		BytesSent:        make(map[string]uint64, len(connTypes)),
		BytesReceived:    make(map[string]uint64, len(connTypes)),
	}
	for i, t := range connTypes {
		s.BytesSent[t] = c.types[i].sent.Load()
		s.BytesReceived[t] = c.types[i].received.Load()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s.ConnectHist = append([]uint64(nil), c.hist[:]...)
	s.ConnectLastMs = float64(c.connectLast.Microseconds()) / 1e3
	if s.Connected > 0 {
		s.ConnectMeanMs = float64(c.connectSum.Microseconds()) / 1e3 / float64(s.Connected)
	}
	return s
}
