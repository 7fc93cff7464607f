package portmap

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeRouter grants what it is told to and records what it was asked.
type fakeRouter struct {
	mu       sync.Mutex
	external netip.Addr
	port     uint16        // the external port it gives; 0: the one asked for
	lifetime time.Duration // the lease it grants
	fail     bool          // refuse every add
	adds     []uint16      // the external ports asked for, in order
	removed  []Mapping
}

func (r *fakeRouter) add(_ context.Context, internal, want uint16, _ time.Duration, _ string) (Mapping, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.adds = append(r.adds, want)
	if r.fail {
		return Mapping{}, errors.New("refused")
	}
	ext := want
	if r.port != 0 {
		ext = r.port
	}
	return Mapping{External: netip.AddrPortFrom(r.external, ext), Method: NATPMP, Lifetime: r.lifetime, internal: internal}, nil
}

func (r *fakeRouter) remove(_ context.Context, m Mapping) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.removed = append(r.removed, m)
	return nil
}

func (r *fakeRouter) set(f func(*fakeRouter)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// run starts Keep with routers found in order (nil: none answers) and returns the mappings
// it reported, read after the bubble settles, and a stop that ends Keep and waits for it.
func run(t *testing.T, cfg Config, routers ...*fakeRouter) (reported func() []Mapping, stop func()) {
	t.Helper()
	var mu sync.Mutex
	var got []Mapping
	found := 0
	cfg.finders = []finder{func(context.Context, time.Duration) (router, error) {
		defer func() { found++ }()
		if found >= len(routers) || routers[found] == nil {
			return nil, errors.New("no router answered")
		}
		return routers[found], nil
	}}
	cfg.Logger = quiet()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Keep(ctx, cfg, func(m Mapping) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, m)
		})
	}()
	return func() []Mapping {
			synctest.Wait()
			mu.Lock()
			defer mu.Unlock()
			return append([]Mapping(nil), got...)
		}, func() {
			cancel()
			<-done
		}
}

var public = netip.MustParseAddr("11.0.0.2")

// TestKeepRenewsAndRemoves: a mapping is reported once, renewed at half its lease asking
// for the port it holds, reported again when the router moves it, and removed when Keep
// ends.
func TestKeepRenewsAndRemoves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &fakeRouter{external: public, lifetime: time.Hour}
		reported, stop := run(t, Config{Port: 8082}, r)
		want := Mapping{External: netip.AddrPortFrom(public, 8082), Method: NATPMP, Lifetime: time.Hour, internal: 8082}
		assert.Equal(t, []Mapping{want}, reported())

		time.Sleep(30*time.Minute + time.Second) // the renewal: the same mapping, not reported again
		assert.Equal(t, []Mapping{want}, reported())
		r.set(func(r *fakeRouter) { r.port = 9000 })
		time.Sleep(30 * time.Minute) // the router gives another port at the next renewal
		moved := want
		moved.External = netip.AddrPortFrom(public, 9000)
		assert.Equal(t, []Mapping{want, moved}, reported())
		r.set(func(r *fakeRouter) { r.port = 0 })
		time.Sleep(30 * time.Minute) // it holds 9000 now, and asks for it
		assert.Equal(t, []Mapping{want, moved}, reported())

		stop()
		assert.Equal(t, []uint16{8082, 8082, 8082, 9000}, r.adds)
		assert.Equal(t, []Mapping{moved}, r.removed, "removed when Keep ends")
	})
}

// TestKeepLosesAndRetries: a renewal the router refuses reports the loss; Keep looks for a
// router again after Retry, then after twice that while none answers, and reports the
// mapping it gets then.
func TestKeepLosesAndRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &fakeRouter{external: public, lifetime: 10 * time.Minute}
		again := &fakeRouter{external: public, lifetime: 10 * time.Minute}
		reported, stop := run(t, Config{Port: 8082, Retry: time.Minute}, r, nil, again)
		require.Len(t, reported(), 1)

		r.set(func(r *fakeRouter) { r.fail = true })
		time.Sleep(5*time.Minute + time.Second) // the renewal fails: lost
		assert.Equal(t, []Mapping{reported()[0], {}}, reported())
		time.Sleep(time.Minute) // after Retry, a search: no router answers
		assert.Len(t, reported(), 2)
		time.Sleep(2*time.Minute - 2*time.Second) // the next after twice Retry, not sooner
		assert.Len(t, reported(), 2)
		time.Sleep(2 * time.Second) // the router answers
		got := reported()
		require.Len(t, got, 3)
		assert.Equal(t, netip.AddrPortFrom(public, 8082), got[2].External)
		stop()
		assert.Len(t, again.removed, 1)
	})
}

// TestKeepRefusesUnreachableAddress: a router behind another NAT (its "public" address in
// carrier-grade NAT space) maps a port no one outside can reach: not reported, and removed
// at once.
func TestKeepRefusesUnreachableAddress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &fakeRouter{external: netip.MustParseAddr("100.64.1.2"), lifetime: time.Hour}
		reported, stop := run(t, Config{Port: 8082}, r)
		assert.Empty(t, reported())
		stop()
		require.Len(t, r.removed, 1)
		assert.Equal(t, netip.MustParseAddr("100.64.1.2"), r.removed[0].External.Addr())
	})
}

// TestDefaultUsable: by default a mapping is usable on a public address only.
func TestDefaultUsable(t *testing.T) {
	var cfg Config
	cfg.setDefaults()
	for a, want := range map[string]bool{
		"11.0.0.2": true, "203.0.113.9": true, "2001:db8::1": true,
		"192.168.1.1": false, "10.0.0.1": false, "100.64.0.1": false, "127.0.0.1": false, "0.0.0.0": false, "fd00::1": false,
	} {
		assert.Equal(t, want, cfg.Usable(netip.MustParseAddr(a)), a)
	}
}
