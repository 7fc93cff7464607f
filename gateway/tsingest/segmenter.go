package tsingest

import (
	"bytes"
	"log/slog"
	"slices"
	"time"
)

// Config configures a Segmenter. The zero value of every field means its default.
type Config struct {
	// TargetDuration is the width of the segmenting grid and the playlist's target
	// duration: a segment starts at the first random access point in each new
	// TargetDuration-wide cell of the source's timeline. Default 2 s.
	TargetDuration time.Duration
	// MaxSegmentBytes bounds a segment: a stream that goes on longer than this without a
	// random access point loses the segment in progress. Default 32 MiB.
	MaxSegmentBytes int
	// Now is the wall clock, read when the timeline is anchored to place the source's
	// 33-bit timestamps in time (see Segmenter); nil means time.Now.
	Now func() time.Time
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Segment is one HLS media segment cut from the stream.
type Segment struct {
	// Seq is the segment's media sequence number (see Segmenter for how it is derived).
	Seq uint64
	// Data is the segment: the PAT, the PMT, then the program's packets as they came.
	Data []byte
	// Duration runs from the segment's first access unit to the next segment's.
	Duration time.Duration
	// Discontinuity: the segment follows a break in the stream (the source dropped, its
	// timestamps jumped, or its program changed).
	Discontinuity bool
}

// Stats counts what a Segmenter saw.
type Stats struct {
	Packets    int64 // 188-byte packets framed
	Damaged    int64 // packets dropped for their transport_error_indicator
	SyncLosses int64 // times the 0x47 sync was lost (and found again)
	BadTables  int64 // PAT or PMT sections that did not parse
	Segments   int64 // segments cut
	Discarded  int64 // segments in progress dropped for going over MaxSegmentBytes
	Jumps      int64 // timestamp jumps taken as a restart of the source's clock
	Misfits    int64 // grid cells without a random access point: the GOP does not fit
}

// Bounds on what one stream can make the segmenter hold or accept.
const (
	// maxPESScan bounds the bytes of one video PES packet scanned for its first slice.
	maxPESScan = 256 << 10
	// maxBackStep is how far a PTS may step back and still be B-frame reordering.
	maxBackStep = 2 * ticksPerSecond
	// minJump is the least forward PTS step taken as a jump of the source's clock.
	minJump = 10 * ticksPerSecond
)

// Segmenter cuts a continuous MPEG-TS stream (one program of it) into HLS segments. Feed it
// bytes with Write as they arrive, in chunks of any size; tell it with Break when the
// source drops. It keeps no goroutine and is not safe for concurrent use.
type Segmenter struct {
	cfg   Config
	width int64 // grid cell, in 90 kHz ticks
	log   *slog.Logger
	stats Stats
	out   []Segment // completed by the current call

	in     []byte // input not framed yet (less than two packets)
	synced bool

	// The program, from the PAT and PMT; tables are re-parsed only when they change.
	pat, pmt         section
	patBody, pmtBody []byte   // the sections last parsed
	patPkts, pmtPkts [][]byte // what each segment starts with
	pmtPID           uint16
	prog             *program // nil until a PMT parsed

	// The segment being built.
	cur      []byte // PAT, PMT, packets; while !open, the packets since pes began
	open     bool   // cur holds a segment that began at a cut
	curSeq   uint64
	curDisc  bool
	curStart int64 // unwrapped PTS of its first access unit
	curCell  int64
	maxPTS   int64 // newest unwrapped PTS seen in it
	pes      pesState

	// The timeline.
	anchored bool   // seq is set: the first segment was cut
	seq      uint64 // of the next segment
	disc     bool   // the next segment starts a discontinuity
	haveLast bool   // lastPTS, lastU are set
	lastPTS  int64  // newest PTS on the cut PID, 33-bit
	lastU    int64  // the same, unwrapped
	frame    int64  // least positive PTS step seen since: one frame or PES packet; 0 if none
	waiting  bool   // the first cut waits for a cell after waitCell
	waitCell int64
}

// pesState follows the cut PID's PES packet being received, until it is known whether it
// starts a random access point.
type pesState struct {
	active  bool  // its packets are being kept in cur
	decided bool  // known whether it is a random access point
	start   int   // offset in cur of its first packet
	pts     int64 // unwrapped
	es      []byte
	scan    int // where the scan of es resumes
}

// New returns a Segmenter.
func New(cfg Config) *Segmenter {
	if cfg.TargetDuration <= 0 {
		cfg.TargetDuration = 2 * time.Second
	}
	if cfg.MaxSegmentBytes <= 0 {
		cfg.MaxSegmentBytes = 32 << 20
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Segmenter{cfg: cfg, log: cfg.Logger, width: int64(cfg.TargetDuration) * ticksPerSecond / int64(time.Second)}
}

// Stats returns the counters.
func (s *Segmenter) Stats() Stats { return s.stats }

// Write takes the next bytes of the stream and returns the segments they complete. The
// segments' Data is theirs to keep; p is not retained.
func (s *Segmenter) Write(p []byte) []Segment {
	s.out = nil
	s.in = append(s.in, p...)
	b, i := s.in, 0
	for len(b)-i >= PacketSize {
		if b[i] == syncByte && (s.synced || (len(b)-i > PacketSize && b[i+PacketSize] == syncByte)) {
			s.synced = true
			s.packet(b[i : i+PacketSize])
			i += PacketSize
			continue
		}
		if !s.synced && b[i] == syncByte && len(b)-i == PacketSize {
			break // a candidate: the next packet's sync byte will confirm it
		}
		if s.synced {
			s.synced = false
			s.stats.SyncLosses++
		}
		j := bytes.IndexByte(b[i+1:], syncByte)
		if j < 0 {
			i = len(b)
			break
		}
		i += 1 + j
	}
	s.in = s.in[:copy(s.in, b[i:])]
	return s.out
}

// Break ends the stream: the segment in progress is completed as it is and returned, and
// the next segment (from a new connection, which starts with its own PAT and PMT) starts a
// discontinuity. Sequence numbers go on from where they were.
func (s *Segmenter) Break() []Segment {
	s.out = nil
	s.cutShort()
	s.in, s.synced = s.in[:0], false
	s.pat, s.pmt, s.patBody, s.pmtBody, s.patPkts, s.pmtPkts = section{}, section{}, nil, nil, nil, nil
	s.prog, s.pmtPID, s.haveLast = nil, 0, false
	return s.out
}

func (s *Segmenter) packet(p []byte) {
	s.stats.Packets++
	if transportError(p) {
		s.stats.Damaged++
		return
	}
	id := pid(p)
	switch {
	case id == patPID:
		s.onPAT(p)
		return
	case s.pmtPID != 0 && id == s.pmtPID:
		s.onPMT(p)
		return
	case s.prog == nil || !s.prog.pids[id]:
		return // null packets, DVB SI, other programs
	}
	cutPES := id == s.prog.cutPID && unitStart(p)
	if cutPES {
		s.beginPES(p)
	} else if !s.open && !s.pes.active {
		return // nothing is kept before the first cut
	}
	s.cur = append(s.cur, p...)
	if id == s.prog.cutPID && s.pes.active && !s.pes.decided {
		if !cutPES {
			s.pes.es = append(s.pes.es, payload(p)...)
		}
		s.decide()
	}
	if len(s.cur) > s.cfg.MaxSegmentBytes {
		s.log.Warn("MPEG-TS: no random access point within the segment size bound; segment dropped", "bytes", len(s.cur))
		s.stats.Discarded++
		s.cur, s.open, s.disc, s.pes = nil, false, true, pesState{}
	}
}

// beginPES starts following a new PES packet on the cut PID (p is its first TS packet).
func (s *Segmenter) beginPES(p []byte) {
	pts, hasPTS, body, ok := pesHeader(payload(p))
	if ok && hasPTS {
		s.track(pts) // may end the open segment on a jump
	}
	if !s.open {
		s.cur = s.cur[:0] // what came before the first cut is not kept
	}
	// es's buffer is reused from one PES packet to the next.
	s.pes = pesState{active: true, start: len(s.cur), pts: s.lastU, decided: !ok || !hasPTS, es: s.pes.es[:0]}
	if !s.pes.decided {
		s.pes.es = append(s.pes.es, body...)
	}
}

// track follows the cut PID's timestamps: it unwraps them (33-bit), and takes a jump as a
// restart of the source's clock, which ends the open segment.
func (s *Segmenter) track(pts int64) {
	if !s.haveLast {
		s.anchor(pts)
		return
	}
	d := ptsDiff(s.lastPTS, pts)
	if d < -maxBackStep || d > max(minJump, 3*s.width) {
		s.log.Warn("MPEG-TS timestamps jumped; the source's clock restarted", "by", time.Duration(d)*time.Second/ticksPerSecond)
		s.stats.Jumps++
		s.cutShort()
		s.anchor(pts)
		return
	}
	s.lastPTS, s.lastU = pts, s.lastU+d
	if d > 0 && (s.frame == 0 || d < s.frame) {
		s.frame = d
	}
	s.maxPTS = max(s.maxPTS, s.lastU)
}

// anchor places a 33-bit PTS on an unwrapped timeline: of the values it can stand for, the
// latest not after the wall clock (in 90 kHz ticks since 1970). Gateways whose clocks agree
// within hours therefore unwrap the same source alike, wherever they joined it.
func (s *Segmenter) anchor(pts int64) {
	now := mul90k(s.cfg.Now().UnixNano())
	s.lastPTS, s.lastU, s.haveLast, s.frame = pts, pts+floorDiv(now-pts, ptsWrap)*ptsWrap, true, 0
}

// decide scans the PES packet being received for its first picture; once found, a random
// access point may start a segment.
func (s *Segmenter) decide() {
	key, found := true, true
	if s.prog.cut != codecAudio {
		key, found, s.pes.scan = firstPicture(s.prog.cut, s.pes.es, s.pes.scan)
		if !found && len(s.pes.es) > maxPESScan {
			key, found = false, true
		}
	}
	if !found {
		return
	}
	s.pes.decided, s.pes.es = true, s.pes.es[:0]
	switch {
	case key:
		s.randomAccess()
	case !s.open:
		s.cur, s.pes.active = s.cur[:0], false
	}
}

// randomAccess handles a random access point at s.pes: it cuts when the point is the first
// in a new cell of the grid. The first segment ever waits for a cell after that of the
// first point seen: that point may not have been the first of its cell, and a gateway
// that joined earlier started its segment at that one.
func (s *Segmenter) randomAccess() {
	cell := floorDiv(s.pes.pts, s.width)
	switch {
	case s.open && cell <= s.curCell:
		return
	case !s.open && !s.anchored && (!s.waiting || cell <= s.waitCell):
		if !s.waiting {
			s.waiting, s.waitCell = true, cell
		}
		s.cur, s.pes.active = s.cur[:0], false
		return
	}
	if s.open {
		if cell > s.curCell+1 {
			s.misfit(cell - s.curCell)
		}
		s.finish(s.pes.start, s.pes.pts-s.curStart)
	}
	if !s.anchored {
		s.seq, s.anchored = uint64(max(cell, 0)), true
	}
	rest := s.cur[s.pes.start:] // the new segment's first packets, in the last one's array
	// A new array, with room for a segment like the last and a quarter more: each segment
	// keeps its backing array (Data is a slice of it), so a larger one would hold memory
	// nobody counts.
	s.cur = s.appendPSI(make([]byte, 0, max(len(s.cur)+len(s.cur)/4, 64<<10)))
	s.cur = append(s.cur, rest...)
	s.open, s.curSeq, s.curDisc, s.disc = true, s.seq, s.disc, false
	s.curStart, s.curCell, s.maxPTS = s.pes.pts, cell, s.pes.pts
	s.seq++
}

// misfit reports a grid cell that held no random access point: the source's GOP is longer
// than the target duration, so this segment is longer than it too (and gateways that
// joined the stream at different times number the rest of it differently).
func (s *Segmenter) misfit(cells int64) {
	s.stats.Misfits++
	if s.stats.Misfits == 1 || s.stats.Misfits%100 == 0 {
		s.log.Warn("source GOP does not fit the target duration: segment longer than it",
			"target", s.cfg.TargetDuration, "cells", cells, "times", s.stats.Misfits)
	}
}

// finish completes the open segment with cur[:end].
func (s *Segmenter) finish(end int, ticks int64) {
	s.out = append(s.out, Segment{Seq: s.curSeq, Data: s.cur[:end:end], Discontinuity: s.curDisc,
		Duration: time.Duration(ticks) * time.Second / ticksPerSecond})
	s.stats.Segments++
	s.open = false
}

// cutShort ends the open segment where the stream is, and makes the next one start a
// discontinuity.
func (s *Segmenter) cutShort() {
	if s.open && s.maxPTS+s.frame > s.curStart {
		s.finish(len(s.cur), s.maxPTS+s.frame-s.curStart)
	}
	s.cur, s.open, s.pes, s.disc, s.waiting = nil, false, pesState{}, true, false
}

// appendPSI appends the PAT and PMT a segment starts with. Their continuity counters follow
// the sequence number, so they run on from one segment to the next (each segment carries
// one copy) and are the same on every gateway.
func (s *Segmenter) appendPSI(buf []byte) []byte {
	for _, pkts := range [][][]byte{s.patPkts, s.pmtPkts} {
		for i, p := range pkts {
			buf = append(buf, p...)
			setCC(buf[len(buf)-PacketSize:], int(s.seq)*len(pkts)+i)
		}
	}
	return buf
}

func (s *Segmenter) onPAT(p []byte) {
	if !s.pat.add(p) {
		return
	}
	body, _ := s.pat.body()
	if bytes.Equal(body, s.patBody) {
		return
	}
	id, err := parsePAT(s.pat.packets)
	if err != nil {
		s.stats.BadTables++
		s.log.Debug("MPEG-TS: PAT ignored", "err", err)
		return
	}
	s.patBody, s.patPkts = bytes.Clone(body), slices.Clone(s.pat.packets)
	if id != s.pmtPID {
		s.pmtPID, s.pmt, s.pmtBody = id, section{}, nil
	}
}

func (s *Segmenter) onPMT(p []byte) {
	if !s.pmt.add(p) || s.patPkts == nil {
		return
	}
	body, _ := s.pmt.body()
	if bytes.Equal(body, s.pmtBody) {
		return
	}
	prog, err := parsePMT(s.patPkts, s.pmt.packets)
	if err != nil {
		s.stats.BadTables++
		s.log.Debug("MPEG-TS: PMT ignored", "err", err)
		return
	}
	if s.prog != nil && !slices.Equal(s.prog.streams, prog.streams) {
		s.log.Info("MPEG-TS program changed; discontinuity", "streams", len(prog.streams))
		s.cutShort()
	}
	if prog.cut == codecNone {
		s.log.Warn("MPEG-TS program has no H.264, H.265, AAC, MP3 or AC-3 stream to cut on")
	}
	s.prog, s.pmtBody, s.pmtPkts = prog, bytes.Clone(body), slices.Clone(s.pmt.packets)
}
