package loadtest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigValidate(t *testing.T) {
	good := Config{GatewayURL: "http://127.0.0.1:1", Channel: "tv", Viewers: 1, Duration: time.Second}
	require.NoError(t, good.Validate())
	for name, tweak := range map[string]func(*Config){
		"no gateway":     func(c *Config) { c.GatewayURL = "" },
		"bad channel":    func(c *Config) { c.Channel = "t v" },
		"nobody":         func(c *Config) { c.Viewers = 0 },
		"negative":       func(c *Config) { c.Direct = -1 },
		"no duration":    func(c *Config) { c.Duration = 0 },
		"churn":          func(c *Config) { c.Churn = 1.5 },
		"slow":           func(c *Config) { c.Slow = -0.1 },
		"slow rate":      func(c *Config) { c.SlowRate = -1 },
		"peer host name": func(c *Config) { c.PeerHost = "localhost" },
		"variant":        func(c *Config) { c.Variants = []int{0, -1} },
	} {
		c := good
		tweak(&c)
		assert.Error(t, c.Validate(), name)
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{Duration: time.Minute}
	c.setDefaults()
	assert.Equal(t, 6*time.Second, c.Ramp, "a tenth of the duration")
	assert.Equal(t, "127.0.0.1", c.PeerHost)
	assert.NotNil(t, c.Logger)
	c = Config{Duration: time.Hour}
	c.setDefaults()
	assert.Equal(t, 10*time.Second, c.Ramp, "at most 10 s")
}

func TestPercentileMS(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var ds []time.Duration
		for _, x := range v {
			ds = append(ds, time.Duration(x)*time.Millisecond)
		}
		return ds
	}
	assert.Zero(t, percentileMS(nil, 0.5))
	assert.Equal(t, 7.0, percentileMS(ms(7), 0.95))
	assert.Equal(t, 30.0, percentileMS(ms(50, 10, 40, 20, 30), 0.5), "nearest rank, unsorted input")
	assert.Equal(t, 50.0, percentileMS(ms(50, 10, 40, 20, 30), 0.95))
}

// TestRunDirectOnly: a run of direct viewers only (no proxy) against a gateway that serves
// an ended playlist: the players start, the segments are counted once however many players
// played them, and nobody stalls.
func TestRunDirectOnly(t *testing.T) {
	const segments = 3
	var playlist strings.Builder
	playlist.WriteString("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n")
	for i := range segments {
		fmt.Fprintf(&playlist, "#EXTINF:1.0,\nseg-%d.ts\n", i)
	}
	playlist.WriteString("#EXT-X-ENDLIST\n")
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/live/tv/index.m3u8":
			_, _ = w.Write([]byte(playlist.String()))
		case strings.HasPrefix(r.URL.Path, "/live/tv/seg-"):
			_, _ = w.Write(make([]byte, 1000))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(gw.Close)
	r, err := Run(t.Context(), Config{GatewayURL: gw.URL, Channel: "tv", Direct: 2, Duration: 2 * time.Second})
	require.NoError(t, err)
	assert.Equal(t, 2, r.Direct)
	assert.Zero(t, r.Viewers)
	assert.Zero(t, r.NotStarted)
	assert.Zero(t, r.PlayerErrors)
	assert.Zero(t, r.DirectStalls)
	assert.Equal(t, segments, r.Segments, "each segment counted once")
	assert.Equal(t, 1, r.Renditions)
	assert.Positive(t, r.DirectJoinP50MS)
}
