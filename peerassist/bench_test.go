package peerassist

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rawflow/rawflow/internal/httpx"
)

// BenchmarkCacheHit is the fetch ladder's first rung: a player asks the proxy for a
// segment it holds. The baseline, measured in the same run, serves the same bytes with no
// proxy logic (httpx.ServeBytes): the ratio is what the proxy adds per request (routing,
// playlist lookup, cache, QoE accounting).
//
//	go test -run '^$' -bench CacheHit -benchmem ./peerassist/ | tee new.txt   (benchstat-friendly)
func BenchmarkCacheHit(b *testing.B) {
	gw := newFakeGateway(3)
	p := startProxy(b, gw, nil)
	seg := gw.window.Segments[1]
	path := "/live/tv/" + seg.Name
	if resp, err := http.Get(p.player.URL + path); err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("warming the cache: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	data := gw.data[seg.Name]
	req := httptest.NewRequest(http.MethodGet, path, nil)
	b.Run("baseline", func(b *testing.B) {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { httpx.ServeBytes(w, r, data) })
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			h.ServeHTTP(httptest.NewRecorder(), req)
		}
	})
	b.Run("proxy", func(b *testing.B) {
		h := p.PlayerHandler()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d", w.Code)
			}
		}
	})
}
