package srt

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Decoders of the control packets a receiver sends (NAK, ACK): the package only receives,
// so only the tests' fakeSender reads them.

// parseLossList decodes a NAK's Control Information Field.
func parseLossList(cif []byte) ([]seqRange, error) {
	if len(cif)%4 != 0 {
		return nil, fmt.Errorf("srt: loss list of %d bytes is not whole words", len(cif))
	}
	var out []seqRange
	for i := 0; i < len(cif); i += 4 {
		w := binary.BigEndian.Uint32(cif[i:])
		if w&0x80000000 == 0 {
			out = append(out, seqRange{w, w})
			continue
		}
		if i+8 > len(cif) {
			return nil, errors.New("srt: loss list range without its end")
		}
		to := binary.BigEndian.Uint32(cif[i+4:])
		if to&0x80000000 != 0 {
			return nil, errors.New("srt: loss list range end has the range bit set")
		}
		from := w & seqMask
		if seqDiff(to, from) < 0 {
			return nil, fmt.Errorf("srt: loss list range %d-%d goes backwards", from, to)
		}
		out = append(out, seqRange{from, to})
		i += 4
	}
	return out, nil
}

// parseACK decodes a full, small (4 words) or light (1 word) ACK; missing fields are zero.
func parseACK(cif []byte) (ackInfo, error) {
	if len(cif) < 4 {
		return ackInfo{}, errors.New("srt: ACK without a sequence number")
	}
	var w [7]uint32
	for i := range w {
		if 4*i+4 > len(cif) {
			break
		}
		w[i] = binary.BigEndian.Uint32(cif[4*i:])
	}
	return ackInfo{w[0] & seqMask, w[1], w[2], w[3], w[4], w[5], w[6]}, nil
}
