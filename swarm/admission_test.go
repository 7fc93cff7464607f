package swarm

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNeighbourCredentials(t *testing.T) {
	peerKey := []byte("gateway peer key")
	now := time.Unix(1_800_000_123, 0)
	keys := ChannelKeys(peerKey, "tv", now)
	require.Len(t, keys, 2)
	assert.Equal(t, WindowOf(now), keys[0].Window)
	assert.Equal(t, WindowOf(now)+1, keys[1].Window)
	assert.True(t, ValidChannelKey(keys[0]))
	assert.NotEqual(t, keys[0].Key, ChannelKeys(peerKey, "radio", now)[0].Key, "a key per channel")
	assert.NotEqual(t, keys[0].Key, ChannelKeys([]byte("other"), "tv", now)[0].Key, "a key per gateway secret")

	mine := func(w int64) (ChannelKey, bool) {
		for _, k := range keys {
			if k.Window == w {
				return k, true
			}
		}
		return ChannelKey{}, false
	}
	theirs := func(channel string, w int64) (ChannelKey, bool) {
		if channel != "tv" {
			return ChannelKey{}, false
		}
		return mine(w)
	}
	const path = "/peer/v1/segments/abc"
	v, ok := SignNeighbourRequest(mine, "tv", path, now)
	require.True(t, ok)
	ch, err := CheckNeighbourRequest(theirs, v, path, now.Add(10*time.Second))
	require.NoError(t, err)
	assert.Equal(t, "tv", ch)

	for name, c := range map[string]struct {
		v, path string
		at      time.Time
		want    error
	}{
		"no header":       {"", path, now, ErrNoCredential},
		"garbage":         {"tv 1 2", path, now, ErrNoCredential},
		"other path":      {v, "/peer/v1/segments/def", now, ErrBadCredential},
		"replayed later":  {v, path, now.Add(CredentialSkew + time.Second), ErrBadCredential},
		"from the future": {v, path, now.Add(-CredentialSkew - time.Second), ErrBadCredential},
	} {
		_, cerr := CheckNeighbourRequest(theirs, c.v, c.path, c.at)
		assert.ErrorIs(t, cerr, c.want, name)
	}
	other, ok := SignNeighbourRequest(func(w int64) (ChannelKey, bool) { return ChannelKeys([]byte("x"), "tv", now)[0], true }, "tv", path, now)
	require.True(t, ok)
	_, err = CheckNeighbourRequest(theirs, other, path, now)
	assert.ErrorIs(t, err, ErrBadCredential, "a key the gateway did not issue")
	_, ok = SignNeighbourRequest(func(int64) (ChannelKey, bool) { return ChannelKey{}, false }, "tv", path, now)
	assert.False(t, ok, "no key for the moment: no credential")
	stale, _ := SignNeighbourRequest(mine, "tv", path, now.Add(2*CredentialWindow))
	assert.Empty(t, stale, "keys of past windows sign nothing later")
}
