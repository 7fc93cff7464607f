// Package gateway is RawFlow's edge: it pulls each channel's live HLS stream from the
// broadcaster's origin, keeps a window of segments in RAM, and serves players and
// peer-assist proxies. It is the swarm's root of trust (it lists a SHA-256 digest per
// segment in the proxies' form of each playlist) and its tracker (the /api/v1/swarm/ API,
// backed by a swarm.Registry), and it aggregates delivery stats.
//
// A segment is listed only once all its bytes are held; segment names embed the start of
// the digest, so a URL never names two different byte strings. Each channel's LatencyMode
// sets how far behind live its players start: every live media playlist says so with
// EXT-X-SERVER-CONTROL:HOLD-BACK and EXT-X-START, which proxies also read to decide how
// many of the newest segments to hide from their player. Usage:
//
//	srv, err := gateway.New(gateway.Config{Channels: []gateway.ChannelConfig{{Name: "tv", Sources: []string{url}}}}, reg)
//	go srv.Run(ctx)
//	http.ListenAndServe(":8080", srv.Handler())
package gateway
