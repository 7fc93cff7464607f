package gateway

import (
	"container/list"
	"context"
	"sync"
	"time"

	"github.com/rawflow/rawflow/gateway/ingest"
	"github.com/rawflow/rawflow/internal/flight"
)

// VOD: an origin playlist that has ended when the gateway first sees it is listed whole at
// once, and each segment is fetched from the origin when first asked for — one fetch
// however many requests arrive together — and kept under an LRU bound (MaxChannelBytes).
// The proxies' playlist gives a segment's digest once the gateway holds it; until then
// proxies fetch it from the gateway.

// vodStore holds the bytes of on-demand segments.
type vodStore struct {
	max     int64
	flights flight.Group[string, *ingest.Segment] // origin fetches under way, by segment name

	mu     sync.Mutex // guards the following fields
	lru    *list.List // of *ingest.Segment, most recent at the front
	byName map[string]*list.Element
	bytes  int64
}

func newVODStore(maxBytes int64) *vodStore {
	return &vodStore{max: maxBytes, lru: list.New(), byName: map[string]*list.Element{}}
}

// held returns the bytes of the named segment if they are held.
func (v *vodStore) held(name string) *ingest.Segment {
	v.mu.Lock()
	defer v.mu.Unlock()
	if el := v.byName[name]; el != nil {
		v.lru.MoveToFront(el)
		return el.Value.(*ingest.Segment)
	}
	return nil
}

// get returns the segment with its bytes, fetching them once with fetch however many
// callers ask together. The fetch outlives a caller that goes away (bounded by timeout);
// each caller waits at most until its own ctx ends.
func (v *vodStore) get(ctx context.Context, placeholder *ingest.Segment, timeout time.Duration, fetch func(context.Context) ([]byte, error)) (*ingest.Segment, error) {
	if seg := v.held(placeholder.Name); seg != nil {
		return seg, nil
	}
	call := v.flights.Do(ctx, placeholder.Name, timeout, func(ctx context.Context) (*ingest.Segment, error) {
		// Check again: a fetch for this name may have ended between held and Do.
		if seg := v.held(placeholder.Name); seg != nil {
			return seg, nil
		}
		data, err := fetch(ctx)
		if err != nil {
			return nil, err
		}
		seg := placeholder.WithData(data)
		v.add(seg) // before the flight ends, so that no caller misses both
		return seg, nil
	})
	return call.Wait(ctx)
}

// add keeps seg and evicts the least recently used beyond the bound (never seg itself).
func (v *vodStore) add(seg *ingest.Segment) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.byName[seg.Name] = v.lru.PushFront(seg)
	v.bytes += seg.Size
	for v.bytes > v.max && v.lru.Len() > 1 {
		old := v.lru.Remove(v.lru.Back()).(*ingest.Segment)
		delete(v.byName, old.Name)
		v.bytes -= old.Size
	}
}
