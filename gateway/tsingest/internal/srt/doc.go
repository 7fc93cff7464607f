// Package srt is a minimal SRT (Secure Reliable Transport) receiver: enough of the protocol
// for the gateway to ingest an MPEG-TS stream that an encoder (ffmpeg, OBS, a hardware box)
// pushes or serves over SRT.
//
// What is supported:
//
//   - live mode (message API, one message per packet), receiving only: a Conn delivers the
//     peer's payload bytes in sequence order as an io.Reader and never sends data;
//   - the HSv5 caller-listener handshake in both roles: Dial (caller) and Listen/Accept
//     (listener, several callers at once on one UDP port), with the Stream ID (SID)
//     extension;
//   - ARQ: full ACKs every 10 ms, ACKACK-based RTT, immediate NAK on a sequence gap plus
//     periodic NAK reports, DROPREQ from the sender, and too-late packet drop: a packet still
//     missing Latency after its loss was detected is given up (Stats.Lost) so that delivery
//     continues with the packets after it;
//   - KEEPALIVE, SHUTDOWN (io.EOF after the data already received) and a peer idle timeout.
//
// What is not: encryption (a peer that requires a passphrase is refused with an error that
// says so), rendezvous mode, the HSv4 (SRT < 1.3) handshake, FEC and other packet filters,
// socket groups (bonding), file/stream (buffer) mode, sending, and timestamp-paced (TSBPD)
// delivery: in-order data is handed to Read as soon as it is contiguous; Latency only bounds
// how long a gap is waited for.
//
// Bounds: datagrams larger than 1500 bytes are dropped; the reorder window is 8192 packets
// (the flow window announced in the handshake); data delivered but not yet Read is bounded
// to 8 MiB per connection: when the reader falls further behind, the oldest payloads are
// dropped and counted in Stats.Lost and Stats.ReaderOverflow (live data is worth less the
// older it gets, so this favours dropping over stalling the sender).
//
// Why hand-written: no SRT library can be resolved through this project's Go module proxy,
// and libsrt via cgo would break the static build. The code follows the SRT protocol draft
// (draft-sharabayko-srt) and the libsrt documentation and is tested against ffmpeg's libsrt.
package srt
