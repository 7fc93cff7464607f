package srt

import (
	"math/rand/v2"
	"testing"
	"time"
)

type collected struct{ got []int }

func (c *collected) emit(b []byte) { c.got = append(c.got, int(b[0])<<16|int(b[1])<<8|int(b[2])) }

func idx(i int) []byte { return []byte{byte(i >> 16), byte(i >> 8), byte(i)} }

// Reordering (within the window), duplicates and the 31-bit wrap: everything comes out
// once, in order, with nothing lost.
func TestRecvBufferReorder(t *testing.T) {
	const n = 20000
	isn := uint32(seqMask - 5000)
	var out collected
	b := newRecvBuffer(isn, time.Second, out.emit)
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i+64 <= n; i += 64 { // shuffle within blocks of 64
		r.Shuffle(64, func(a, c int) { order[i+a], order[i+c] = order[i+c], order[i+a] })
	}
	now := time.Now()
	dups := 0
	for k, i := range order {
		if _, dup := b.insert(seqAdd(isn, i), idx(i), now); dup {
			t.Fatalf("packet %d reported duplicate", i)
		}
		if k%7 == 0 { // and a duplicate of something recent
			j := order[max(0, k-3)]
			if _, dup := b.insert(seqAdd(isn, j), idx(j), now); !dup {
				t.Fatalf("duplicate of %d not detected", j)
			}
			dups++
		}
	}
	if len(out.got) != n || b.lost != 0 || b.missing != 0 {
		t.Fatalf("emitted %d of %d, lost %d, missing %d", len(out.got), n, b.lost, b.missing)
	}
	for i, v := range out.got {
		if v != i {
			t.Fatalf("position %d holds packet %d", i, v)
		}
	}
}

// A gap is waited for latency, then skipped; a far jump gives up the oldest; flush hands
// over what is held.
func TestRecvBufferExpireAndJump(t *testing.T) {
	var out collected
	t0 := time.Now()
	b := newRecvBuffer(100, 50*time.Millisecond, out.emit)
	b.insert(100, idx(0), t0)
	gaps, _ := b.insert(103, idx(3), t0)
	if len(gaps) != 1 || gaps[0] != (seqRange{101, 102}) {
		t.Fatalf("gaps %v", gaps)
	}
	if due := b.dueLosses(t0.Add(10*time.Millisecond), 20*time.Millisecond, 10); due != nil {
		t.Errorf("losses due before the NAK interval: %v", due)
	}
	if due := b.dueLosses(t0.Add(30*time.Millisecond), 20*time.Millisecond, 10); len(due) != 1 || due[0] != (seqRange{101, 102}) {
		t.Errorf("due losses %v", due)
	}
	if n := b.expire(t0.Add(49 * time.Millisecond)); n != 0 {
		t.Fatalf("gave up %d before latency", n)
	}
	if n := b.expire(t0.Add(50 * time.Millisecond)); n != 2 || len(out.got) != 2 || out.got[1] != 3 {
		t.Fatalf("expire gave up %d, emitted %v", n, out.got)
	}

	b.insert(104, idx(4), t0)
	b.insert(106, idx(6), t0) // 105 missing
	b.insert(104+ringSize+10, idx(99), t0)
	// 105 is lost, 106 delivered, 107..114 skipped (the window moves to 115), and
	// 115..8305 are a gap.
	if b.lost != 2+1+8 || b.next != 115 || b.missing != ringSize-1 {
		t.Fatalf("after the jump: lost %d, next %d, missing %d", b.lost, b.next, b.missing)
	}
	if b.free() != 0 {
		t.Fatalf("free %d with the window full", b.free())
	}
	b.flush()
	if last := out.got[len(out.got)-1]; last != 99 {
		t.Fatalf("flush emitted %v", out.got)
	}
	if b.lost != 11+ringSize-1 {
		t.Errorf("lost %d after flush", b.lost)
	}
	if want := []int{0, 3, 4, 6, 99}; len(out.got) != len(want) {
		t.Fatalf("emitted %v, want %v", out.got, want)
	}
}
