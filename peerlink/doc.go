// Package peerlink carries HTTP between proxies that cannot reach each other over TCP:
// behind home routers and carrier NATs. It gives net/http a WebRTC transport (pion/webrtc):
// each stream is a net.Conn over one data channel, encrypted by DTLS and routed by ICE
// (host, STUN server-reflexive, or TURN relay candidates), so the same http.Client (its
// Transport.DialContext calls Link.Dial) and the same http.Server (Serve on
// Link.Listener()) run over it as over TCP, with one fetch scheduler and one integrity
// check for both.
//
// # Signalling
//
// peerlink does not know how offers and answers travel. Dial makes an offer and hands it
// to Config.Send with the remote's key (an opaque string the caller chose, e.g.
// "channel/peerID"); the caller relays it through the gateway, and feeds whatever the
// gateway relays back to Link.HandleSignal with the sender's key. SDP is complete
// (non-trickle: candidates are gathered before Send), at most MaxSDPBytes.
//
// # Authentication
//
// A Link connects only to a remote whose SDP came through the signalling path, and the
// DTLS fingerprint in that SDP authenticates the endpoint that answers; there is no other
// way in (no listening TCP port, no ICE without signalling). Admission is therefore the
// gateway's: it relays signals only between peers it admitted. The server side of a stream
// sees the remote's key as the request's RemoteAddr.
//
// # Peer connections and streams
//
// A Link keeps one peer connection per remote and direction: its Dials to a remote share
// the peer connection it offered (each Dial opens a data channel on it, no signalling),
// and the peer connections it answered only feed its Listener. No glare handling is needed
// beyond that. A peer connection with no open stream for IdleTimeout is closed, as is one
// whose ICE fails.
//
// Streams use detached data channels (reliable, ordered). Reads hand out whole messages
// piecewise, so a small Read works; writes are cut into messages of at most 16 KiB and
// wait while more than 1 MiB is queued on the channel (resuming at 256 KiB), so a 2 MB
// segment does not balloon memory. Read and write deadlines work as on TCP. Closing a
// stream resets its channel, and the remote's Read returns io.EOF.
//
// # Bounds
//
//   - MaxPeers peer connections at once, both directions (Dial fails with
//     ErrTooManyPeers, offers are ignored);
//   - at most 2 inbound peer connections still connecting per remote (an offer flood);
//   - SDP of at most MaxSDPBytes, session IDs of exactly 32 hex digits, SDP parsed
//     before any peer connection is made;
//   - every handshake within HandshakeTimeout (signalling, ICE, DTLS, SCTP);
//   - 256 streams per peer connection, 64 KiB per received message, 16 messages queued
//     per stream before SCTP pushes back;
//   - 64 streams waiting for Accept; past that a new stream is closed and counted.
//
// Close ends every peer connection and returns once none of the Link's goroutines is left.
//
// # Network
//
// Only UDP candidates, mDNS off. ICE servers come from Config.ICEServers (STUN, TURN with
// credentials); RelayOnly restricts a Link to TURN relays. ICE gives up on a neighbour
// that vanished after about 15 s, which ends its streams. Config.UDPConn puts every peer
// connection of a Link on one UDP socket (pion's UDP mux); without it each peer
// connection gathers on ephemeral ports (PortMin..PortMax). pion's own log lines go to
// Config.Logger at debug level.
//
// ServeSTUN is the STUN Binding server the gateway runs (UDP :3478 by default), so peers
// learn their public address without a third-party server.
package peerlink
