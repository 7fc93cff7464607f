package gateway

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/rawflow/rawflow/playlist"
)

// VOD: an origin playlist that has ended when the gateway first sees it is listed whole at
// once, and each segment is fetched from the origin when first asked for — one fetch
// however many requests arrive together — and kept under an LRU bound (MaxChannelBytes).
// The proxies' playlist gives a segment's digest once the gateway holds it; until then
// proxies fetch it from the gateway.

// vodName names an on-demand segment after its origin address, which for VOD names
// immutable bytes: "SEQ-vHASH16EXT".
func vodName(seq uint64, u *url.URL, r *playlist.ByteRange, ext string) string {
	id := u.String()
	if r != nil {
		id += fmt.Sprintf("@%d+%d", r.Offset, r.Length)
	}
	h := sha256.Sum256([]byte(id))
	return fmt.Sprintf("%d-v%s%s", seq, hex.EncodeToString(h[:8]), ext)
}

// vodStore holds the bytes of on-demand segments.
type vodStore struct {
	max int64

	mu      sync.Mutex // guards the following fields
	lru     *list.List // of *Segment, most recent at the front
	byName  map[string]*list.Element
	bytes   int64
	flights map[string]*vodFlight
}

// vodFlight is one origin fetch that concurrent requests share; done is closed when seg or
// err is set.
type vodFlight struct {
	done chan struct{}
	seg  *Segment
	err  error
}

func newVODStore(maxBytes int64) *vodStore {
	return &vodStore{max: maxBytes, lru: list.New(), byName: map[string]*list.Element{}, flights: map[string]*vodFlight{}}
}

// held returns the bytes of the named segment if they are held.
func (v *vodStore) held(name string) *Segment {
	v.mu.Lock()
	defer v.mu.Unlock()
	if el := v.byName[name]; el != nil {
		v.lru.MoveToFront(el)
		return el.Value.(*Segment)
	}
	return nil
}

// get returns the segment with its bytes, fetching them once with fetch. The fetch runs
// detached from the caller (one viewer leaving never cancels it for the others) and bounded
// by timeout; the caller waits at most until its own ctx ends.
func (v *vodStore) get(ctx context.Context, placeholder *Segment, timeout time.Duration, fetch func(context.Context) ([]byte, error)) (*Segment, error) {
	if seg := v.held(placeholder.Name); seg != nil {
		return seg, nil
	}
	v.mu.Lock()
	f := v.flights[placeholder.Name]
	if f == nil {
		f = &vodFlight{done: make(chan struct{})}
		v.flights[placeholder.Name] = f
		go v.run(ctx, f, placeholder, timeout, fetch)
	}
	v.mu.Unlock()
	select {
	case <-f.done:
		return f.seg, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (v *vodStore) run(ctx context.Context, f *vodFlight, placeholder *Segment, timeout time.Duration, fetch func(context.Context) ([]byte, error)) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	data, err := fetch(fctx)
	if err == nil {
		d := playlist.Sum(data)
		seg := *placeholder
		seg.Digest, seg.Size, seg.Data, seg.ETag = d, int64(len(data)), data, `"`+d.String()[:32]+`"`
		f.seg = &seg
		v.add(f.seg)
	}
	f.err = err
	v.mu.Lock()
	delete(v.flights, placeholder.Name)
	v.mu.Unlock()
	close(f.done)
}

// add keeps seg and evicts the least recently used beyond the bound (never seg itself).
func (v *vodStore) add(seg *Segment) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.byName[seg.Name] = v.lru.PushFront(seg)
	v.bytes += seg.Size
	for v.bytes > v.max && v.lru.Len() > 1 {
		old := v.lru.Remove(v.lru.Back()).(*Segment)
		delete(v.byName, old.Name)
		v.bytes -= old.Size
	}
}
