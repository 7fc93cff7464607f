package swarm

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzTrackerRequests decodes arbitrary bytes as each tracker request body, the way the
// gateway does, then validates it. Nothing may panic, and whatever validates must hold
// only well-formed identifiers and survive a JSON round trip unchanged.
func FuzzTrackerRequests(f *testing.F) {
	for _, seed := range []string{
		`{"channel":"tv","addr":":8082","group":"office","stats":{"bytes_from_peers":10}}`,
		`{"peer_id":"0123456789abcdef0123456789abcdef","token":"1-ab","channel":"tv","addr":"10.0.0.1:1","banned":["fedcba9876543210fedcba9876543210"]}`,
		`{"peer_id":"0123456789abcdef0123456789abcdef","token":"1-ab","channel":"tv","digests":["` + digest(1) + `"]}`,
		`{"peer_id":"0123456789abcdef0123456789abcdef","token":"1-ab","channel":"tv","digest":"` + digest(2) + `","late":true,"leech":true}`,
		`{"channel":"tv","addr":":1","banned":[]}`,
		`{"channel":"../x","addr":"8.8.8.8:53"}`, `{"digests":[]}`, `[]`, `null`, `{"stats":{"bytes_uploaded":-1}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var a AnnounceRequest
		if json.Unmarshal(data, &a) == nil && a.Validate() == nil {
			require.True(t, ValidChannel(a.Channel))
			require.True(t, a.PeerID == "" || ValidPeerID(a.PeerID))
			require.LessOrEqual(t, len(a.Banned), MaxBannedReports)
			roundTrip(t, a)
		}
		var h HaveRequest
		if json.Unmarshal(data, &h) == nil && h.Validate() == nil {
			require.True(t, ValidChannel(h.Channel) && ValidPeerID(h.PeerID))
			require.NotEmpty(t, h.Digests)
			require.LessOrEqual(t, len(h.Digests), MaxHaveDigests)
			for _, d := range h.Digests {
				require.True(t, ValidDigest(d))
			}
			roundTrip(t, h)
		}
		var l LookupRequest
		if json.Unmarshal(data, &l) == nil && l.Validate() == nil {
			require.True(t, ValidChannel(l.Channel) && ValidPeerID(l.PeerID) && ValidDigest(l.Digest))
			roundTrip(t, l)
		}
		var v LeaveRequest
		if json.Unmarshal(data, &v) == nil && v.Validate() == nil {
			require.True(t, ValidChannel(v.Channel) && ValidPeerID(v.PeerID))
			roundTrip(t, v)
		}
	})
}

// roundTrip checks that v encodes, decodes and encodes again to the same bytes, and that
// what decodes still validates.
func roundTrip[T interface{ Validate() error }](t *testing.T, v T) {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var back T
	require.NoError(t, json.Unmarshal(b, &back))
	require.NoError(t, back.Validate())
	b2, err := json.Marshal(back)
	require.NoError(t, err)
	require.Equal(t, string(b), string(b2))
}
