package tsingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/asticode/go-astits"
)

// maxSectionPackets bounds the packets one PAT or PMT section may span (a section is at most
// 1021 bytes: 6 packets).
const maxSectionPackets = 6

// section collects the packets of one PSI section on one PID, as they came.
type section struct {
	packets [][]byte // copies of the section's packets
	data    []byte   // their payloads, concatenated
}

// add takes one packet of the PID; it returns true once the section it belongs to is
// complete. Packets before the first section start, and sections that would span too many
// packets, are dropped.
func (s *section) add(p []byte) (complete bool) {
	pl := payload(p)
	if pl == nil {
		return false
	}
	if unitStart(p) {
		s.packets, s.data = s.packets[:0], s.data[:0]
	} else if len(s.packets) == 0 {
		return false
	}
	if len(s.packets) == maxSectionPackets {
		s.packets, s.data = s.packets[:0], s.data[:0]
		return false
	}
	s.packets = append(s.packets, bytes.Clone(p))
	s.data = append(s.data, pl...)
	body, ok := s.body()
	return ok && len(body) > 0
}

// body returns the section's bytes from its table_id to its CRC, once all have arrived.
func (s *section) body() ([]byte, bool) {
	if len(s.data) < 1 {
		return nil, false
	}
	start := 1 + int(s.data[0]) // pointer_field
	if len(s.data) < start+3 {
		return nil, false
	}
	end := start + 3 + (int(s.data[start+1]&0x0F)<<8 | int(s.data[start+2]))
	if len(s.data) < end {
		return nil, false
	}
	return s.data[start:end], true
}

// esInfo is one elementary stream of the program.
type esInfo struct {
	pid   uint16
	codec codec // codecNone for streams the segmenter only passes through
}

// program is what the segmenter keeps of the PMT: the PIDs it passes through and the one it
// cuts on.
type program struct {
	pids    map[uint16]bool // elementary streams and the PCR PID
	cutPID  uint16
	cut     codec
	streams []esInfo
}

// errNoProgram: the PAT names no program.
var errNoProgram = errors.New("PAT lists no program")

// parsePAT returns the PID of the first program's PMT. The tables are parsed by go-astits
// (section syntax, CRC): that is the part of MPEG-TS where hand-written code goes wrong.
func parsePAT(pat [][]byte) (uint16, error) {
	dmx := demux(pat)
	for range len(pat) + 1 {
		d, err := dmx.NextData()
		if err != nil {
			return 0, fmt.Errorf("PAT: %w", err)
		}
		if d.PAT == nil {
			continue
		}
		for _, p := range d.PAT.Programs {
			if p.ProgramNumber != 0 { // program 0 points at the NIT
				return p.ProgramMapID, nil
			}
		}
		return 0, errNoProgram
	}
	return 0, errNoProgram
}

// parsePMT returns the program described by a PMT; pat gives the demuxer the PMT's PID.
func parsePMT(pat, pmt [][]byte) (*program, error) {
	all := append(append([][]byte{}, pat...), pmt...)
	dmx := demux(all)
	for range len(all) + 1 {
		d, err := dmx.NextData()
		if err != nil {
			return nil, fmt.Errorf("PMT: %w", err)
		}
		if d.PMT != nil {
			return newProgram(d.PMT), nil
		}
	}
	return nil, errors.New("PMT: no table found")
}

// demux returns a go-astits demuxer reading packets. The demuxer wants a context, but it
// reads from memory: there is nothing to wait for and nothing for a caller's context to
// cancel (Segmenter.Write has none to give). contextcheck skips a function whose declaration
// carries the directive below, so its reports at Write's callers go; golangci-lint finds no
// report inside demux itself and would call the directive unused, hence nolintlint in it.
//
//nolint:contextcheck,nolintlint // an in-memory parse needs no cancellation, see above
func demux(packets [][]byte) *astits.Demuxer {
	return astits.NewDemuxer(context.Background(), bytes.NewReader(bytes.Join(packets, nil)),
		astits.DemuxerOptPacketSize(PacketSize))
}

func newProgram(pmt *astits.PMTData) *program {
	p := &program{pids: map[uint16]bool{pmt.PCRPID: true}}
	var audio uint16
	for _, es := range pmt.ElementaryStreams {
		c := streamCodec(es)
		p.pids[es.ElementaryPID] = true
		p.streams = append(p.streams, esInfo{pid: es.ElementaryPID, codec: c})
		switch {
		case (c == codecH264 || c == codecH265) && p.cut == codecNone:
			p.cutPID, p.cut = es.ElementaryPID, c
		case c == codecAudio && audio == 0:
			audio = es.ElementaryPID
		}
	}
	if p.cut == codecNone && audio != 0 {
		p.cutPID, p.cut = audio, codecAudio
	}
	return p
}

// streamCodec classifies an elementary stream: the video codecs the segmenter finds random
// access points in, the audio codecs whose every PES packet starts a frame (AAC, MP3, AC-3,
// E-AC-3, also as DVB private data with their descriptor), and everything else, which is
// passed through.
func streamCodec(es *astits.PMTElementaryStream) codec {
	switch es.StreamType {
	case astits.StreamTypeH264Video:
		return codecH264
	case astits.StreamTypeH265Video:
		return codecH265
	case astits.StreamTypeAACAudio, astits.StreamTypeAACLATMAudio, astits.StreamTypeMPEG1Audio,
		astits.StreamTypeMPEG2Audio, astits.StreamTypeAC3Audio, astits.StreamTypeEAC3Audio:
		return codecAudio
	case astits.StreamTypePrivateData:
		for _, d := range es.ElementaryStreamDescriptors {
			if d.Tag == astits.DescriptorTagAC3 || d.Tag == astits.DescriptorTagEnhancedAC3 {
				return codecAudio
			}
		}
	}
	return codecNone
}
