package swarm

import (
	"encoding/json"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzTrackerRequests decodes arbitrary bytes as a report body and as an event stream's
// query, the way the gateway does, then validates them. Nothing may panic, and whatever
// validates must hold only well-formed identifiers and survive a round trip unchanged.
func FuzzTrackerRequests(f *testing.F) {
	for _, seed := range []string{
		`{"peer_id":"0123456789abcdef0123456789abcdef","token":"1-ab","channel":"tv","stats":{"bytes_from_peers":10}}`,
		`{"peer_id":"0123456789abcdef0123456789abcdef","token":"1-ab","channel":"tv","banned":["fedcba9876543210fedcba9876543210"],"leave":true}`,
		`channel=tv&rendition=r0&rendition=r1&addr=:8082&group=office`, `channel=tv&leech=1`,
		`channel=../x&addr=8.8.8.8:53`, `{"digests":[]}`, `[]`, `null`, `{"stats":{"bytes_uploaded":-1}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r ReportRequest
		if json.Unmarshal(data, &r) == nil && r.Validate() == nil {
			require.True(t, ValidChannel(r.Channel) && ValidPeerID(r.PeerID))
			require.LessOrEqual(t, len(r.Banned), MaxBannedReports)
			roundTrip(t, r)
		}
		if q, err := url.ParseQuery(string(data)); err == nil {
			if sub, err := ParseSubscription(q); err == nil {
				require.True(t, ValidChannel(sub.Channel) && ValidGroup(sub.Group))
				require.LessOrEqual(t, len(sub.Renditions), MaxRenditionsPerPeer)
				again, err := ParseSubscription(sub.Query())
				require.NoError(t, err)
				require.Equal(t, sub, again)
			}
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
