package loadtest

import (
	"cmp"
	"slices"
	"syscall"
	"time"
)

// Report is what a run measured, so far or in all. Offload and the per-segment figures are
// over the assisted viewers' proxies, departed ones included. The JSON names are what
// `rawflow swarm --json` prints and bench scripts read: keep them.
type Report struct {
	Viewers           int     `json:"viewers"` // assisted viewers still playing
	Direct            int     `json:"direct_viewers"`
	DurationS         float64 `json:"duration_s"` // since the first join
	Churned           int     `json:"churned"`
	Slow              int     `json:"slow_uploaders"`
	Offload           float64 `json:"offload"` // share of the proxies' segment bytes that came from peers
	BytesFromPeers    int64   `json:"bytes_from_peers"`
	BytesFromGateway  int64   `json:"bytes_from_gateway"`
	Segments          int     `json:"distinct_segments"`
	Renditions        int     `json:"renditions"` // distinct media playlists segments came from
	GatewayFetchesSeg float64 `json:"gateway_fetches_per_segment"`
	// RootFetchesSeg is the part of GatewayFetchesSeg that stripes' roots made for their
	// cells; the rest are fallbacks (no plan yet, or the swarm late for a deadline).
	RootFetchesSeg    float64 `json:"root_fetches_per_segment"`
	OffloadLimit      float64 `json:"offload_limit"` // 1 − k/N with k = gateway fetches per segment of 1
	Stalls            int     `json:"stalls"`
	StallS            float64 `json:"stall_s"`
	DirectStalls      int     `json:"direct_stalls"`
	DirectStallS      float64 `json:"direct_stall_s"`
	NotStarted        int     `json:"not_started"`
	PlayerErrors      int     `json:"player_errors"`
	JoinP50MS         float64 `json:"join_p50_ms"`
	JoinP95MS         float64 `json:"join_p95_ms"`
	DirectJoinP50MS   float64 `json:"direct_join_p50_ms"`
	DirectJoinP95MS   float64 `json:"direct_join_p95_ms"`
	LatencyS          float64 `json:"latency_s"` // mean behind live, assisted
	DirectLatencyS    float64 `json:"direct_latency_s"`
	TrackerPerViewSeg float64 `json:"tracker_requests_per_viewer_segment"`
	// TrackerRefused counts the tracker calls the gateway refused for their rate (429).
	TrackerRefused int64 `json:"tracker_refused"`
	// Connections counts the connections the proxies opened (to the gateway and to each
	// other); ConnsPerViewer is that per assisted viewer who ever joined.
	Connections    int64   `json:"connections_opened"`
	ConnsPerViewer float64 `json:"connections_per_viewer"`
	// CPUS is the CPU time this process used (proxies, players, and the gateway when the
	// run started its own), and CPUCores that over the run's duration.
	CPUS              float64 `json:"cpu_s"`
	CPUCores          float64 `json:"cpu_cores"`
	IntegrityFailures int64   `json:"integrity_failures"`
	NeighbourFailures int64   `json:"neighbour_failures"`
	RangeCompletions  int64   `json:"range_completions"`
	GatewayResumes    int64   `json:"gateway_resumes"`
	Held              int64   `json:"held"`
	QuietSpells       int     `json:"quiet_spells"`
	// SwarmMisses sums the proxies' member fetches the swarm missed, by cause
	// (peerassist.ChannelStatus.SwarmMisses).
	SwarmMisses map[string]int64 `json:"swarm_misses,omitempty"`
	// Links are the proxies' WebRTC links (peerlink): set up and failed, the mean time to
	// set one up (ICE and DTLS), and the bytes received over them by how they travel
	// (host, srflx, prflx, relay); the rest of BytesFromPeers came over TCP.
	LinksConnected  uint64           `json:"links_connected"`
	LinksFailed     uint64           `json:"links_failed"`
	LinkConnectMS   float64          `json:"ice_connect_ms"`
	LinkBytesByType map[string]int64 `json:"link_bytes_received"`
	// NAT counts the proxies by what their NAT test found (peerassist.Status.NAT:
	// "cone", "symmetric"; "unknown" when it found nothing).
	NAT map[string]int `json:"nat,omitempty"`
}

// report sums what every viewer measured so far.
func (b *bench) report(elapsed time.Duration) Report {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := Report{DurationS: elapsed.Seconds(), Churned: b.churned, Segments: len(b.segments), Renditions: len(b.dirs)}
	var joins, directJoins []time.Duration
	var latency, directLatency time.Duration
	var segmentsFromGateway, roots, tracker, played int64
	var connectMS float64
	assisted := 0
	for _, v := range b.viewers {
		res := v.player.Result()
		if v.left != nil {
			res = *v.left
		}
		r.PlayerErrors += res.Errors
		if !res.Started {
			r.NotStarted++
		}
		if v.direct {
			r.Direct++
			r.DirectStalls += res.Stalls
			r.DirectStallS += res.StallTime.Seconds()
			if res.Started {
				directJoins = append(directJoins, res.Startup)
				directLatency += res.Latency
			}
			continue
		}
		if v.final == nil {
			r.Viewers++
		}
		if v.slow {
			r.Slow++
		}
		r.Stalls += res.Stalls
		r.StallS += res.StallTime.Seconds()
		played += int64(res.Segments)
		if res.Started {
			joins = append(joins, res.Startup)
			latency += res.Latency
		}
		st := v.final
		if st == nil {
			s := v.node.Proxy.Status()
			st = &s
		}
		c := st.Totals
		r.BytesFromPeers += c.BytesFromPeers
		r.BytesFromGateway += c.BytesFromGateway
		segmentsFromGateway += c.SegmentsFromGateway
		r.IntegrityFailures += c.IntegrityFailures
		r.NeighbourFailures += c.NeighbourFailures
		r.QuietSpells += st.QuietSpells
		r.Connections += st.Connections
		if st.Links != nil { // WebRTC on: the NAT was tested (or could not be)
			if r.NAT == nil {
				r.NAT = map[string]int{}
			}
			r.NAT[cmp.Or(st.NAT, "unknown")]++
		}
		if l := st.Links; l != nil {
			r.LinksConnected += l.Connected
			r.LinksFailed += l.Failed
			connectMS += l.ConnectMeanMs * float64(l.Connected)
			for t, n := range l.BytesReceived {
				if r.LinkBytesByType == nil {
					r.LinkBytesByType = map[string]int64{}
				}
				r.LinkBytesByType[t] += int64(n)
			}
		}
		assisted++
		for _, ch := range st.Channels {
			tracker += ch.TrackerRequests
			r.TrackerRefused += ch.TrackerRefused
			roots += ch.Roots
			r.RangeCompletions += ch.RangeCompletions
			r.GatewayResumes += ch.GatewayResumes
			r.Held += ch.Held
			for cause, n := range ch.SwarmMisses {
				if r.SwarmMisses == nil {
					r.SwarmMisses = map[string]int64{}
				}
				r.SwarmMisses[cause] += n
			}
		}
	}
	if total := r.BytesFromPeers + r.BytesFromGateway; total > 0 {
		r.Offload = float64(r.BytesFromPeers) / float64(total)
	}
	if r.Segments > 0 {
		r.GatewayFetchesSeg = float64(segmentsFromGateway) / float64(r.Segments)
		r.RootFetchesSeg = float64(roots) / float64(r.Segments)
	}
	if r.Viewers > 0 {
		r.OffloadLimit = 1 - 1/float64(r.Viewers)
	}
	if played > 0 {
		r.TrackerPerViewSeg = float64(tracker) / float64(played)
	}
	if r.LinksConnected > 0 {
		r.LinkConnectMS = connectMS / float64(r.LinksConnected)
	}
	if assisted > 0 {
		r.ConnsPerViewer = float64(r.Connections) / float64(assisted)
	}
	r.CPUS = cpuTime().Seconds() - b.cpuAtStart.Seconds()
	if elapsed > 0 {
		r.CPUCores = r.CPUS / elapsed.Seconds()
	}
	r.JoinP50MS, r.JoinP95MS = percentileMS(joins, 0.5), percentileMS(joins, 0.95)
	r.DirectJoinP50MS, r.DirectJoinP95MS = percentileMS(directJoins, 0.5), percentileMS(directJoins, 0.95)
	if n := len(joins); n > 0 {
		r.LatencyS = (latency/time.Duration(n) + b.hidden).Seconds()
	}
	if n := len(directJoins); n > 0 {
		r.DirectLatencyS = (directLatency / time.Duration(n)).Seconds()
	}
	return r
}

// percentileMS returns the p-quantile of ds in milliseconds (nearest rank); 0 when empty.
func percentileMS(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := min(len(s)-1, max(0, int(p*float64(len(s))+0.5)-1))
	return float64(s[i]) / float64(time.Millisecond)
}

// cpuTime returns the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
