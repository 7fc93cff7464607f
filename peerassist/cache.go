package peerassist

import (
	"container/list"
	"sync"

	"github.com/rawflow/rawflow/playlist"
)

// segment is a verified segment: immutable once made, shared without copying.
type segment struct {
	digest  playlist.Digest
	channel string // the channel it was fetched for, to attribute uploads
	data    []byte
}

// cache is a byte-bounded LRU of verified segments keyed by digest.
type cache struct {
	max int64

	mu    sync.Mutex // guards the following fields
	bytes int64
	order *list.List // of *segment, most recent at the front
	byKey map[playlist.Digest]*list.Element
}

func newCache(maxBytes int64) *cache {
	return &cache{max: maxBytes, order: list.New(), byKey: map[playlist.Digest]*list.Element{}}
}

func (c *cache) get(d playlist.Digest) *segment {
	c.mu.Lock()
	defer c.mu.Unlock()
	el := c.byKey[d]
	if el == nil {
		return nil
	}
	c.order.MoveToFront(el)
	return el.Value.(*segment)
}

// add inserts s and evicts the least recently used segments beyond the bound.
func (c *cache) add(s *segment) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byKey[s.digest]; ok {
		return
	}
	c.byKey[s.digest] = c.order.PushFront(s)
	c.bytes += int64(len(s.data))
	for c.bytes > c.max && c.order.Len() > 1 {
		old := c.order.Remove(c.order.Back()).(*segment)
		delete(c.byKey, old.digest)
		c.bytes -= int64(len(old.data))
	}
}

// size returns the bytes and segments held.
func (c *cache) size() (bytes int64, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes, c.order.Len()
}
