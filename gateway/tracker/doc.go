// Package tracker is the gateway's tracker: the API through which peer-assist proxies join a
// channel's swarm. A proxy opens one event stream (GET swarm.PathEvents) per channel and
// keeps it open: the tracker admits it (a new peer, or the one its token names), registers it
// in the cells it plays (swarm.Registry.Subscribe: a stable slot each), and streams it
//
//   - its plan for each rendition (swarm.Roster.Plan): where it gets each stripe of the
//     segments — the gateway when it is a root, else the peers named — sent again only when
//     it changes;
//   - a segment event for every segment the gateway lists (Published), so that the swarm
//     starts on it at once;
//   - fresh peer tokens.
//
// Reports (POST swarm.PathReport, every ReportInterval) carry the proxy's counters and the
// neighbours it caught sending bad bytes; a report counts against a neighbour only when
// this gateway's plans sent the reporter to it (bans.go). So a proxy makes no tracker call
// per segment: one stream and a report every ten seconds.
//
// Admission (limits.go) is per peer identity, with joins and a high ceiling of all calls
// per client address: a whole office behind one NAT is one address. Refusals are counted
// (Snapshot) and added to the channels' stats.
//
// The hub (hub.go) keeps this gateway's streams and plans their cells when they change and
// every rosterRefresh (members of other gateways of a fleet); Run keeps the streams'
// registrations alive.
package tracker
