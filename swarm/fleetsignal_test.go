package swarm

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/internal/redistest"
)

// TestFleetSignalBus: what one gateway publishes, every gateway on the Redis receives, in
// order; messages that are not valid signals (garbage, oversized, a bad field) are
// dropped on the way in.
func TestFleetSignalBus(t *testing.T) {
	url := redistest.Start(t)
	open := func() *Redis {
		r, err := OpenRedis(url, Options{})
		require.NoError(t, err)
		t.Cleanup(func() { r.Close() })
		return r
	}
	pub, sub := open(), open()
	got := make(chan FleetSignal, 8)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- sub.ReceiveSignals(ctx, func(m FleetSignal) { got <- m }) }()

	valid := FleetSignal{Stage: FleetDeliver, Channel: "tv", From: peerID(1), To: peerID(2),
		Signal: Signal{Session: strings.Repeat("ab", 16), Kind: SignalOffer, SDP: "v=0"}}
	bad := valid
	bad.To = bad.From
	// The subscription is in place once a message published after it arrives.
	require.Eventually(t, func() bool {
		require.NoError(t, pub.PublishSignal(ctx, valid))
		select {
		case <-got:
			return true
		default:
			return false
		}
	}, 5*time.Second, 50*time.Millisecond)
	require.NoError(t, pub.client.Publish(ctx, fleetSignals, "not json").Err())
	require.NoError(t, pub.client.Publish(ctx, fleetSignals, `{"stage":"deliver","sdp":"`+strings.Repeat("x", maxFleetSignalBytes)+`"}`).Err())
	require.NoError(t, pub.PublishSignal(ctx, bad))
	last := valid
	last.SDP = "v=0 last"
	require.NoError(t, pub.PublishSignal(ctx, last))
	m := <-got
	for m == valid { // probes still on their way when the first came back
		m = <-got
	}
	assert.Equal(t, last, m, "only the valid message came through")
	cancel()
	require.NoError(t, <-done)
	assert.Error(t, bad.Validate())
	assert.NoError(t, valid.Validate())
}

// TestFleetSignalBusDown: without a Redis to subscribe on, ReceiveSignals says so (the
// tracker logs it and tries again) rather than wait in silence.
func TestFleetSignalBusDown(t *testing.T) {
	r, err := OpenRedis("redis://127.0.0.1:1/0", Options{})
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err = r.ReceiveSignals(ctx, func(FleetSignal) { t.Error("no message without a Redis") })
	assert.ErrorIs(t, err, ErrUnavailable)
	assert.NoError(t, ctx.Err(), "it answered before giving up")
}
