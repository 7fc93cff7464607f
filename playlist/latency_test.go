package playlist_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rawflow/rawflow/playlist"
)

// holdBackCases are HoldBack's table; they also seed FuzzHoldBack.
var holdBackCases = []struct {
	name   string
	header []string
	want   time.Duration
	wantOK bool
}{
	{"none", nil, 0, false},
	{"no server control", []string{"#EXT-X-INDEPENDENT-SEGMENTS", "#EXT-X-START:TIME-OFFSET=-6"}, 0, false},
	{"integer", []string{"#EXT-X-SERVER-CONTROL:HOLD-BACK=6"}, 6 * time.Second, true},
	{"decimals", []string{"#EXT-X-INDEPENDENT-SEGMENTS", "#EXT-X-SERVER-CONTROL:HOLD-BACK=6.5"}, 6500 * time.Millisecond, true},
	{"trailing dot", []string{"#EXT-X-SERVER-CONTROL:HOLD-BACK=6."}, 6 * time.Second, true},
	{"millisecond", []string{"#EXT-X-SERVER-CONTROL:HOLD-BACK=0.001"}, time.Millisecond, true},
	{"zero", []string{"#EXT-X-SERVER-CONTROL:HOLD-BACK=0"}, 0, true},
	{"among other attributes", []string{"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,HOLD-BACK=12.0,PART-HOLD-BACK=1.0"}, 12 * time.Second, true},
	{"a day", []string{"#EXT-X-SERVER-CONTROL:HOLD-BACK=86400"}, 24 * time.Hour, true},
	{"no hold-back", []string{"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES"}, 0, false},
	{"no attributes", []string{"#EXT-X-SERVER-CONTROL"}, 0, false},
	{"empty attributes", []string{"#EXT-X-SERVER-CONTROL:"}, 0, false},
	{"quoted", []string{`#EXT-X-SERVER-CONTROL:HOLD-BACK="6"`}, 0, false},
	{"negative", []string{"#EXT-X-SERVER-CONTROL:HOLD-BACK=-6"}, 0, false},
	{"exponent", []string{"#EXT-X-SERVER-CONTROL:HOLD-BACK=6e1"}, 0, false},
	{"hex", []string{"#EXT-X-SERVER-CONTROL:HOLD-BACK=0x6p0"}, 0, false},
	{"infinite", []string{"#EXT-X-SERVER-CONTROL:HOLD-BACK=Inf"}, 0, false},
	{"leading dot", []string{"#EXT-X-SERVER-CONTROL:HOLD-BACK=.5"}, 0, false},
	{"over a day", []string{"#EXT-X-SERVER-CONTROL:HOLD-BACK=86400.001"}, 0, false},
	{"huge", []string{"#EXT-X-SERVER-CONTROL:HOLD-BACK=" + strings.Repeat("9", 400)}, 0, false},
	{"bad attribute list", []string{"#EXT-X-SERVER-CONTROL:HOLD-BACK=6,,"}, 0, false},
	{"duplicate attribute", []string{"#EXT-X-SERVER-CONTROL:HOLD-BACK=6,HOLD-BACK=7"}, 0, false},
	{"two lines", []string{"#EXT-X-SERVER-CONTROL:HOLD-BACK=6", "#EXT-X-SERVER-CONTROL:HOLD-BACK=6"}, 0, false},
	{"other tag with the prefix", []string{"#EXT-X-SERVER-CONTROLX:HOLD-BACK=6"}, 0, false},
}

func TestHoldBack(t *testing.T) {
	for _, tc := range holdBackCases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := playlist.HoldBack(tc.header)
			assert.Equal(t, tc.wantOK, ok)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestWithHoldBack(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header []string
		hold   time.Duration
		want   []string
	}{
		{"nil header", nil, 6 * time.Second,
			[]string{"#EXT-X-SERVER-CONTROL:HOLD-BACK=6", "#EXT-X-START:TIME-OFFSET=-6"}},
		{"decimals", []string{"#EXT-X-INDEPENDENT-SEGMENTS"}, 6500 * time.Millisecond,
			[]string{"#EXT-X-INDEPENDENT-SEGMENTS", "#EXT-X-SERVER-CONTROL:HOLD-BACK=6.5", "#EXT-X-START:TIME-OFFSET=-6.5"}},
		{"three decimals", nil, 12345 * time.Millisecond,
			[]string{"#EXT-X-SERVER-CONTROL:HOLD-BACK=12.345", "#EXT-X-START:TIME-OFFSET=-12.345"}},
		{"leading zero decimal", nil, 4050 * time.Millisecond,
			[]string{"#EXT-X-SERVER-CONTROL:HOLD-BACK=4.05", "#EXT-X-START:TIME-OFFSET=-4.05"}},
		{"rounded to the millisecond", nil, 8*time.Second + 999600*time.Microsecond,
			[]string{"#EXT-X-SERVER-CONTROL:HOLD-BACK=9", "#EXT-X-START:TIME-OFFSET=-9"}},
		{"under a second", nil, 250 * time.Millisecond,
			[]string{"#EXT-X-SERVER-CONTROL:HOLD-BACK=0.25", "#EXT-X-START:TIME-OFFSET=-0.25"}},
		{"replaces the origin's", []string{
			"#EXT-X-START:TIME-OFFSET=-30,PRECISE=YES", "#EXT-X-INDEPENDENT-SEGMENTS",
			"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,HOLD-BACK=3", "#EXT-X-STARTX:1",
		}, 10 * time.Second, []string{
			"#EXT-X-INDEPENDENT-SEGMENTS", "#EXT-X-STARTX:1",
			"#EXT-X-SERVER-CONTROL:HOLD-BACK=10", "#EXT-X-START:TIME-OFFSET=-10",
		}},
		{"zero strips", []string{"#EXT-X-START:TIME-OFFSET=-6", "#EXT-X-INDEPENDENT-SEGMENTS", "#EXT-X-SERVER-CONTROL:HOLD-BACK=6"}, 0,
			[]string{"#EXT-X-INDEPENDENT-SEGMENTS"}},
		{"negative strips", []string{"#EXT-X-START:TIME-OFFSET=-6"}, -time.Second, []string{}},
		{"under half a millisecond strips", nil, 400 * time.Microsecond, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.header)
			got := playlist.WithHoldBack(tc.header, tc.hold)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, in, tc.header, "input modified")
			if len(tc.header) > 0 && len(got) > 0 {
				got[0] = "changed"
				assert.Equal(t, in, tc.header, "result shares the input's array")
			}
			if hold, ok := playlist.HoldBack(got); ok {
				assert.Equal(t, tc.hold.Round(time.Millisecond), hold, "HoldBack reads back what WithHoldBack wrote")
			}
		})
	}
}

// TestWithHoldBackAppendDoesNotAlias: appending to the result never writes into the input's
// spare capacity, so the gateway can derive each render's header from the origin's.
func TestWithHoldBackAppendDoesNotAlias(t *testing.T) {
	header := make([]string, 1, 8)
	header[0] = "#EXT-X-INDEPENDENT-SEGMENTS"
	a := playlist.WithHoldBack(header, 6*time.Second)
	b := playlist.WithHoldBack(header, 9*time.Second)
	assert.Equal(t, "#EXT-X-SERVER-CONTROL:HOLD-BACK=6", a[1])
	assert.Equal(t, "#EXT-X-SERVER-CONTROL:HOLD-BACK=9", b[1])
}

// TestHoldBackRoundTrip: the gateway's hold-back survives both forms. ParseGateway keeps
// the lines in Header (proxies read them there); ParseOrigin keeps EXT-X-START but drops
// EXT-X-SERVER-CONTROL, as it does every origin's (a gateway pulling from another writes
// its own again).
func TestHoldBackRoundTrip(t *testing.T) {
	for _, tc := range windowCases {
		if tc.w.Ended {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			w := tc.w
			w.Header = playlist.WithHoldBack(w.Header, 8*time.Second)
			body := playlist.Render(w, playlist.ForProxies)
			assert.Contains(t, string(body), "\n#EXT-X-SERVER-CONTROL:HOLD-BACK=8\n#EXT-X-START:TIME-OFFSET=-8\n")

			got, err := playlist.ParseGateway(body)
			require.NoError(t, err)
			assert.Equal(t, &w, got)
			hold, ok := playlist.HoldBack(got.Header)
			require.True(t, ok)
			assert.Equal(t, 8*time.Second, hold)

			players := playlist.Render(w, playlist.ForPlayers)
			assert.Contains(t, string(players), "\n#EXT-X-SERVER-CONTROL:HOLD-BACK=8\n#EXT-X-START:TIME-OFFSET=-8\n")
			m, err := playlist.ParseOrigin(players)
			require.NoError(t, err)
			assert.Contains(t, m.Header, "#EXT-X-START:TIME-OFFSET=-8")
			_, ok = playlist.HoldBack(m.Header)
			assert.False(t, ok, "an origin's EXT-X-SERVER-CONTROL is dropped")
		})
	}
}

func FuzzHoldBack(f *testing.F) {
	for _, tc := range holdBackCases {
		f.Add(strings.Join(tc.header, "\n"))
	}
	f.Fuzz(func(t *testing.T, header string) {
		lines := strings.Split(header, "\n")
		hold, ok := playlist.HoldBack(lines)
		if !ok {
			require.Zero(t, hold)
			return
		}
		require.True(t, hold >= 0 && hold <= 24*time.Hour, "hold %v", hold)
		again, ok := playlist.HoldBack(playlist.WithHoldBack(lines, hold))
		if hold.Round(time.Millisecond) > 0 {
			require.True(t, ok)
			require.Equal(t, hold.Round(time.Millisecond), again)
		}
	})
}
