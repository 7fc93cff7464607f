// Package gateway is RawFlow's edge: it keeps each channel's renditions as windows of
// segments in RAM, filled by its ingest (package gateway/ingest, which faces the
// broadcaster's origin), and serves players and peer-assist proxies from them. It is the
// swarm's root of trust (it lists a SHA-256 digest per segment in the proxies' form of each
// playlist) and its tracker (the /api/v1/swarm/ API, backed by a Registry shared with the
// rest of the fleet), and it counts its own egress, the ground truth of delivery stats,
// which the dashboard (package web, wired to the gateway by cmd/rawflow) reads back from
// that registry.
//
// Where things are:
//
//	server.go    Server: New, Run (channels' lifecycle), SetChannels, Register (routes), errors → statuses
//	channel.go   a channel and its renditions; discovery through ingest
//	window.go    a rendition's window (ingest.Window): publish, retire, render both forms
//	serve.go     playlists and segments for players and proxies; VOD on demand (vod.go)
//	tracker.go   the tracker API; peertoken.go its tokens and bans; ratelimit.go its limits
//	stats.go     egress and viewer counts into the registry, the last minute's offload; /api/v1/stats
//	metrics.go   /metrics
//	registry.go  the interfaces the gateway needs of its registry (swarm.Memory, swarm.Redis)
//
// A segment is listed only once all its bytes are held; segment names embed the start of
// the digest, so a URL never names two different byte strings. Each channel's LatencyMode
// sets how far behind live its players start: every live media playlist says so with
// EXT-X-SERVER-CONTROL:HOLD-BACK and EXT-X-START, which proxies also read to decide how
// many of the newest segments to hide from their player. Usage:
//
//	srv, err := gateway.New(gateway.Config{Channels: []gateway.ChannelConfig{{Name: "tv", Sources: []string{url}}}}, swarm.NewMemory(swarm.Options{}))
//	go srv.Run(ctx)
//	http.ListenAndServe(":8080", srv.Handler())
package gateway
