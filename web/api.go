package web

import "github.com/rawflow/rawflow/swarm"

// The stats API's JSON: what the dashboard's handlers send and static/app.js reads. README,
// "HTTP API", documents it; web's tests decode into these same types.

// Figures are a channel's (or all channels') headline numbers.
type Figures struct {
	// Offload is the share of player bytes peers carried over the last minute. Here and in
	// every figure of the API, peer bytes count only as far as reported uploads corroborate
	// them (swarm.Counters.ConfirmedPeerBytes): one client's claims alone move nothing.
	Offload float64 `json:"offload"`
	// GatewayMbps and PeerMbps are the rates of the last minute.
	GatewayMbps float64 `json:"gateway_mbps"`
	PeerMbps    float64 `json:"peer_mbps"`
	// ViewersAssisted is the proxies registered; ViewersDirect the players of the gateways
	// themselves.
	ViewersAssisted int64 `json:"viewers_assisted"`
	ViewersDirect   int64 `json:"viewers_direct"`
	// Stalls, StartupMillis (the mean), IntegrityFailures, PeersBanned and TrackerRefused
	// (tracker calls the gateways refused for their rate) are the last minute's.
	Stalls            int64 `json:"stalls"`
	StartupMillis     int64 `json:"startup_ms"`
	IntegrityFailures int64 `json:"integrity_failures"`
	PeersBanned       int64 `json:"peers_banned"`
	TrackerRefused    int64 `json:"tracker_refused"`
	// BytesSaved is the (confirmed) bytes peers carried since the channel began; MoneySaved is what
	// they would have cost at Config.PricePerGB.
	BytesSaved int64   `json:"bytes_saved"`
	MoneySaved float64 `json:"money_saved"`
	// UnconfirmedPeerBytes is the part of the peer bytes since the channel began that no
	// reported upload corroborates (swarm.Counters.UnconfirmedPeerBytes).
	UnconfirmedPeerBytes int64 `json:"unconfirmed_peer_bytes"`
}

// ChannelFigures are one channel's figures.
type ChannelFigures struct {
	Name string `json:"name"`
	Figures
}

// Overview is GET /api/v1/overview, and each event of GET /api/v1/events.
type Overview struct {
	GeneratedAt   int64            `json:"generated_at"`   // unix seconds
	WindowSeconds int64            `json:"window_seconds"` // the span of the last minute's figures
	PricePerGB    float64          `json:"price_per_gb"`
	Currency      string           `json:"currency"`
	Total         Figures          `json:"total"`
	Channels      []ChannelFigures `json:"channels"` // sorted by name
}

// Point is one step of a series.
type Point struct {
	T                 int64   `json:"t"` // the step's start, unix seconds
	GatewayBytes      int64   `json:"gateway_bytes"`
	PeerBytes         int64   `json:"peer_bytes"` // confirmed: min(reported, UploadedBytes)
	UploadedBytes     int64   `json:"uploaded_bytes"`
	Offload           float64 `json:"offload"`
	GatewayMbps       float64 `json:"gateway_mbps"`
	PeerMbps          float64 `json:"peer_mbps"`
	ViewersAssisted   int64   `json:"viewers_assisted"`
	ViewersDirect     int64   `json:"viewers_direct"`
	Stalls            int64   `json:"stalls"`
	Startups          int64   `json:"startups"`
	StartupMillis     int64   `json:"startup_ms"` // the mean of the step's startups
	IntegrityFailures int64   `json:"integrity_failures"`
	PeersBanned       int64   `json:"peers_banned"`
	TrackerRefused    int64   `json:"tracker_refused"`
}

// Series is GET /api/v1/channels/{channel}/series.
type Series struct {
	Channel string  `json:"channel"`
	From    int64   `json:"from"`
	To      int64   `json:"to"`
	Step    int64   `json:"step_seconds"`
	Points  []Point `json:"points"`
}

// Split is one row of a breakdown.
type Split struct {
	Name         string  `json:"name"`
	GatewayBytes int64   `json:"gateway_bytes"`
	PeerBytes    int64   `json:"peer_bytes"` // reported, cut by the range's confirmed share
	Offload      float64 `json:"offload"`
}

// Breakdown is GET /api/v1/channels/{channel}/breakdown: a channel's totals over a range,
// by rendition, by group, who fed whom, and how each group's peer bytes travelled.
type Breakdown struct {
	Channel    string            `json:"channel"`
	From       int64             `json:"from"`
	To         int64             `json:"to"`
	Renditions []Split           `json:"renditions"` // sorted by name
	Groups     []Split           `json:"groups"`     // sorted by name
	Feeds      []swarm.Feed      `json:"feeds"`
	Paths      []swarm.PathBytes `json:"paths"` // sorted by group, then path
}
