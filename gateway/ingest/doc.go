// Package ingest is the gateway's side that faces the broadcaster: it finds out what each
// channel's origin serves (Discover), then, for each media playlist the gateway will serve
// (a rendition), pulls it from an HLS origin (HLS) or cuts it from a continuous MPEG-TS
// stream (TS), and publishes every segment — complete, verified by its SHA-256, numbered —
// to a Window that the edge implements. It owns the timeline (timeline.go): media and
// discontinuity sequences never go back, across origin restarts, failovers and gateway
// restarts, and every gateway of a fleet lists the same bytes under the same number
// (through a Fleet, the shared registry: one call per listed segment).
//
// All origin requests go through Origin: bounded in time and size.
//
//	d, err := ingest.Discover(ctx, origin, sources, cfg)
//	for _, name := range d.Renditions {
//		go d.Ingest(ingest.Target{Channel: "tv", Rendition: name, Window: win, Fleet: reg}).Run(ctx)
//	}
package ingest
