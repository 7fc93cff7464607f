package swarm

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNeighbourCredential: a request signed with a channel's swarm key of the moment is
// admitted for that channel, within CredentialSkew of either clock and across a window's
// end; anything else is refused.
func TestNeighbourCredential(t *testing.T) {
	peerKey := []byte("k")
	now := time.Unix(1_800_000_000, 0)
	held := map[string][]ChannelKey{"tv": ChannelKeys(peerKey, "tv", now)} // the neighbour's keys
	lookup := func(channel string, w int64) (ChannelKey, bool) {
		for _, k := range held[channel] {
			if k.Window == w {
				return k, true
			}
		}
		return ChannelKey{}, false
	}
	sender := func(peerKey []byte, channel string) func(int64) (ChannelKey, bool) {
		ks := ChannelKeys(peerKey, channel, now)
		return func(w int64) (ChannelKey, bool) {
			for _, k := range ks {
				if k.Window == w {
					return k, true
				}
			}
			return ChannelKey{}, false
		}
	}
	const path = "/peer/v1/segments/ab"
	next := time.Unix((WindowOf(now)+1)*int64(CredentialWindow/time.Second), 0) // the next window's start
	for _, tc := range []struct {
		name         string
		peerKey      []byte
		channel      string
		signed, seen time.Time
		want         error
	}{
		{"same clock", peerKey, "tv", now, now, nil},
		{"clocks apart", peerKey, "tv", now, now.Add(CredentialSkew), nil},
		{"sender past the window's end", peerKey, "tv", next.Add(time.Second), next.Add(-time.Second), nil},
		{"neighbour past the window's end", peerKey, "tv", next.Add(-time.Second), next.Add(time.Second), nil},
		{"too old", peerKey, "tv", now, now.Add(CredentialSkew + time.Second), ErrBadCredential},
		{"another gateway", []byte("other"), "tv", now, now, ErrBadCredential},
		{"another channel", peerKey, "radio", now, now, ErrBadCredential},
		{"keys expired", peerKey, "tv", now.Add(3 * CredentialWindow), now.Add(3 * CredentialWindow), ErrBadCredential},
	} {
		v, ok := SignNeighbourRequest(sender(tc.peerKey, tc.channel), tc.channel, path, tc.signed)
		if tc.name == "keys expired" {
			assert.False(t, ok, "the sender holds no key of the moment either")
			v, _ = SignNeighbourRequest(func(int64) (ChannelKey, bool) { return ChannelKeys(peerKey, "tv", now)[0], true }, "tv", path, tc.signed)
		} else {
			require.True(t, ok, tc.name)
		}
		channel, err := CheckNeighbourRequest(lookup, v, path, tc.seen)
		if assert.ErrorIs(t, err, tc.want, tc.name) && tc.want == nil {
			assert.Equal(t, tc.channel, channel)
		}
	}
	v, _ := SignNeighbourRequest(sender(peerKey, "tv"), "tv", path, now)
	_, err := CheckNeighbourRequest(lookup, v, path+"0", now)
	assert.ErrorIs(t, err, ErrBadCredential, "another path")
	for _, bad := range []string{"", "tv", "tv 1 2", "t v 1 2 " + strings.Repeat("a", 64), "tv x 2 " + strings.Repeat("a", 64), "tv 1 2 zz"} {
		_, err := CheckNeighbourRequest(lookup, bad, path, now)
		assert.ErrorIs(t, err, ErrNoCredential, bad)
	}
}
