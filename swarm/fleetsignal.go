package swarm

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Signals across a fleet. A proxy's event stream is on one gateway of a fleet, its signal
// POSTs may land on any (a balancer picks), and the peer it signals may have its stream on
// a third. The gateway that holds the sender's stream is the one that knows what its plans
// paired it with (and which offers its answers answer), and the one that holds the
// recipient's stream is the one that can deliver; gateways pass a signal between them on
// Redis pub/sub, in two stages:
//
//   - FleetCheck: a gateway got a signal from a peer whose stream is elsewhere; the
//     gateway that holds it checks the signal as if POSTed there.
//   - FleetDeliver: a checked signal whose recipient's stream is elsewhere; the gateway
//     that holds it delivers it (and, for an offer, remembers it for its answer).
//
// Each stage is published at most once per signal. Nothing is stored: a signal that finds
// no gateway is lost, and the dialer falls back as for any link that does not come up.
const (
	FleetCheck   = "check"
	FleetDeliver = "deliver"
	// maxFleetSignalBytes bounds a message read from the bus.
	maxFleetSignalBytes = MaxSDPBytes + 1024
)

// FleetSignal is a signal on its way between the gateways of a fleet. Its sender was
// authenticated (peer token) by the gateway that first got it.
type FleetSignal struct {
	Stage   string `json:"stage"`
	Channel string `json:"channel"`
	From    string `json:"from"`
	To      string `json:"to"`
	Signal
}

// Validate checks the message's fields.
func (m FleetSignal) Validate() error {
	if m.Stage != FleetCheck && m.Stage != FleetDeliver {
		return badf("stage %q: want %s or %s", m.Stage, FleetCheck, FleetDeliver)
	}
	if err := checkChannelPeer(m.Channel, m.From); err != nil {
		return err
	}
	if err := checkRecipient(m.From, m.To); err != nil {
		return err
	}
	return m.Signal.Validate()
}

// PublishSignal passes m to every gateway on this Redis (this one included).
func (r *Redis) PublishSignal(ctx context.Context, m FleetSignal) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := r.client.Publish(ctx, fleetSignals, b).Err(); err != nil {
		return fmt.Errorf("%w: publish signal: %w", ErrUnavailable, err)
	}
	return nil
}

// ReceiveSignals calls handle with every valid signal published on this Redis, in order,
// until ctx ends; a message that is not one (too long, malformed) is dropped. It returns
// an error when it cannot subscribe; once subscribed, it resubscribes by itself after a lost
// connection (messages published meanwhile are lost).
func (r *Redis) ReceiveSignals(ctx context.Context, handle func(FleetSignal)) error {
	ps := r.client.Subscribe(ctx, fleetSignals)
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil { // the subscription's confirmation
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("%w: subscribe to signals: %w", ErrUnavailable, err)
	}
	ch := ps.Channel(redis.WithChannelSize(1024))
	for {
		select {
		case <-ctx.Done():
			return nil
		case msg, ok := <-ch:
			if !ok {
				return nil
			}
			if len(msg.Payload) > maxFleetSignalBytes {
				continue
			}
			var m FleetSignal
			if json.Unmarshal([]byte(msg.Payload), &m) != nil || m.Validate() != nil {
				continue
			}
			handle(m)
		}
	}
}
