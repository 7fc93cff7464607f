package web_test

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// The stats API's JSON, as the contract between the gateway and the dashboard gives it.
type (
	figures struct {
		Offload           float64 `json:"offload"`
		GatewayMbps       float64 `json:"gateway_mbps"`
		PeerMbps          float64 `json:"peer_mbps"`
		ViewersAssisted   int     `json:"viewers_assisted"`
		ViewersDirect     int     `json:"viewers_direct"`
		Stalls            int     `json:"stalls"`
		StartupMS         float64 `json:"startup_ms"`
		IntegrityFailures int     `json:"integrity_failures"`
		PeersBanned       int     `json:"peers_banned"`
		BytesSaved        int64   `json:"bytes_saved"`
		MoneySaved        float64 `json:"money_saved"`
	}
	channelFigures struct {
		Name string `json:"name"`
		figures
	}
	overview struct {
		GeneratedAt   int64            `json:"generated_at"`
		WindowSeconds int              `json:"window_seconds"`
		PricePerGB    float64          `json:"price_per_gb"`
		Currency      string           `json:"currency"`
		Total         figures          `json:"total"`
		Channels      []channelFigures `json:"channels"`
	}
	point struct {
		T                 int64   `json:"t"`
		GatewayBytes      int64   `json:"gateway_bytes"`
		PeerBytes         int64   `json:"peer_bytes"`
		UploadedBytes     int64   `json:"uploaded_bytes"`
		Offload           float64 `json:"offload"`
		GatewayMbps       float64 `json:"gateway_mbps"`
		PeerMbps          float64 `json:"peer_mbps"`
		ViewersAssisted   int     `json:"viewers_assisted"`
		ViewersDirect     int     `json:"viewers_direct"`
		Stalls            int     `json:"stalls"`
		Startups          int     `json:"startups"`
		StartupMS         float64 `json:"startup_ms"`
		IntegrityFailures int     `json:"integrity_failures"`
		PeersBanned       int     `json:"peers_banned"`
	}
	series struct {
		Channel     string  `json:"channel"`
		From        int64   `json:"from"`
		To          int64   `json:"to"`
		StepSeconds int64   `json:"step_seconds"`
		Points      []point `json:"points"`
	}
	split struct {
		Name         string  `json:"name"`
		GatewayBytes int64   `json:"gateway_bytes"`
		PeerBytes    int64   `json:"peer_bytes"`
		Offload      float64 `json:"offload"`
	}
	feed struct {
		From  string `json:"from"`
		To    string `json:"to"`
		Bytes int64  `json:"bytes"`
	}
	breakdown struct {
		Channel    string  `json:"channel"`
		From       int64   `json:"from"`
		To         int64   `json:"to"`
		Renditions []split `json:"renditions"`
		Groups     []split `json:"groups"`
		Feeds      []feed  `json:"feeds"`
	}
)

// fakeAPI serves fixtures that follow the contract: two channels, radio (one media
// playlist, ungrouped peers, no feeds) and tv (two renditions, three groups). The rates
// wobble from one second to the next and bytes_saved grows every 10 s, as live figures do.
type fakeAPI struct {
	done <-chan struct{} // closed at the end of the test: ends the event streams
}

const pricePerGB = 0.02

var fixtures = map[string]struct {
	figures
	breakdown breakdown
}{
	"radio": {
		figures{GatewayMbps: 0.4, PeerMbps: 0.12, ViewersAssisted: 3, ViewersDirect: 2, Stalls: 0, StartupMS: 420,
			BytesSaved: 4_400_000},
		breakdown{
			Renditions: []split{{Name: "", GatewayBytes: 3_000_000, PeerBytes: 900_000, Offload: 0.23076923076923078}},
			Groups:     []split{{Name: "", GatewayBytes: 3_000_000, PeerBytes: 900_000, Offload: 0.23076923076923078}},
			Feeds:      []feed{},
		},
	},
	"tv": {
		figures{GatewayMbps: 0.09, PeerMbps: 1.25, ViewersAssisted: 41, ViewersDirect: 4, Stalls: 3, StartupMS: 812.5,
			IntegrityFailures: 1, PeersBanned: 1, BytesSaved: 117_700_000},
		breakdown{
			Renditions: []split{
				{Name: "r0", GatewayBytes: 5_000_000, PeerBytes: 70_000_000, Offload: 0.9333333333333333},
				{Name: "r1", GatewayBytes: 2_000_000, PeerBytes: 18_000_000, Offload: 0.9},
			},
			Groups: []split{
				{Name: "paris", GatewayBytes: 3_000_000, PeerBytes: 52_000_000, Offload: 0.9454545454545454},
				{Name: "lyon", GatewayBytes: 2_500_000, PeerBytes: 30_000_000, Offload: 0.9230769230769231},
				{Name: "", GatewayBytes: 1_500_000, PeerBytes: 6_000_000, Offload: 0.8},
			},
			Feeds: []feed{
				{From: "paris", To: "paris", Bytes: 40_000_000}, {From: "paris", To: "lyon", Bytes: 9_000_000},
				{From: "lyon", To: "lyon", Bytes: 21_000_000}, {From: "", To: "paris", Bytes: 12_000_000},
				{From: "paris", To: "", Bytes: 6_000_000},
			},
		},
	},
}

func (f *fakeAPI) register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/overview", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, f.overview(time.Now()))
	})
	mux.HandleFunc("GET /api/v1/events", f.events)
	mux.HandleFunc("GET /api/v1/channels/{channel}/series", func(w http.ResponseWriter, r *http.Request) {
		if s, ok := f.series(w, r); ok {
			writeJSON(w, http.StatusOK, s)
		}
	})
	mux.HandleFunc("GET /api/v1/channels/{channel}/export.csv", func(w http.ResponseWriter, r *http.Request) {
		s, ok := f.series(w, r)
		if !ok {
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		fmt.Fprintln(w, "time,gateway_bytes,peer_bytes,uploaded_bytes,offload,viewers_assisted,viewers_direct,stalls,startups,startup_ms,integrity_failures,peers_banned")
		for _, p := range s.Points {
			fmt.Fprintf(w, "%s,%d,%d,%d,%g,%d,%d,%d,%d,%g,%d,%d\n", time.Unix(p.T, 0).UTC().Format(time.RFC3339),
				p.GatewayBytes, p.PeerBytes, p.UploadedBytes, p.Offload, p.ViewersAssisted, p.ViewersDirect,
				p.Stalls, p.Startups, p.StartupMS, p.IntegrityFailures, p.PeersBanned)
		}
	})
	mux.HandleFunc("GET /api/v1/channels/{channel}/breakdown", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("channel")
		fx, ok := fixtures[name]
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"message": "unknown channel " + name})
			return
		}
		from, to, _, err := rangeParams(r)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"message": err.Error()})
			return
		}
		b := fx.breakdown
		b.Channel, b.From, b.To = name, from, to
		writeJSON(w, http.StatusOK, b)
	})
}

func (f *fakeAPI) overview(now time.Time) overview {
	ov := overview{GeneratedAt: now.Unix(), WindowSeconds: 60, PricePerGB: pricePerGB, Currency: "USD"}
	var startups float64
	for _, name := range []string{"radio", "tv"} { // sorted by name
		c := fixtures[name].figures
		c.GatewayMbps += 0.01 * float64(now.Unix()%3)
		c.BytesSaved += now.Unix() / 10 % 100 * 1_000_000
		c.Offload = c.PeerMbps / (c.PeerMbps + c.GatewayMbps)
		c.MoneySaved = float64(c.BytesSaved) / 1e9 * pricePerGB
		ov.Channels = append(ov.Channels, channelFigures{Name: name, figures: c})

		t := &ov.Total
		t.GatewayMbps += c.GatewayMbps
		t.PeerMbps += c.PeerMbps
		t.ViewersAssisted += c.ViewersAssisted
		t.ViewersDirect += c.ViewersDirect
		t.Stalls += c.Stalls
		t.IntegrityFailures += c.IntegrityFailures
		t.PeersBanned += c.PeersBanned
		t.BytesSaved += c.BytesSaved
		startups += c.StartupMS
	}
	ov.Total.Offload = ov.Total.PeerMbps / (ov.Total.PeerMbps + ov.Total.GatewayMbps)
	ov.Total.StartupMS = startups / 2
	ov.Total.MoneySaved = float64(ov.Total.BytesSaved) / 1e9 * pricePerGB
	return ov
}

// events streams the overview every 500 ms (the gateway: every 2 s), with a comment first.
func (f *fakeAPI) events(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	rc := http.NewResponseController(w)
	fmt.Fprint(w, ": ping\n\n")
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		data, _ := json.Marshal(f.overview(time.Now()))
		if _, err := fmt.Fprintf(w, "event: overview\ndata: %s\n\n", data); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
		select {
		case <-tick.C:
		case <-r.Context().Done():
			return
		case <-f.done:
			return
		}
	}
}

// series answers a channel's series, or writes the contract's 404 or 400 and reports false.
func (f *fakeAPI) series(w http.ResponseWriter, r *http.Request) (series, bool) {
	name := r.PathValue("channel")
	fx, ok := fixtures[name]
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "unknown channel " + name})
		return series{}, false
	}
	from, to, step, err := rangeParams(r)
	if err == nil && (to-from)/step >= 1440 {
		err = fmt.Errorf("more than 1440 points")
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": err.Error()})
		return series{}, false
	}
	s := series{Channel: name, From: from, To: to, StepSeconds: step, Points: []point{}}
	for t := from / step * step; t <= to; t += step {
		s.Points = append(s.Points, fakePoint(fx.figures, t, step))
	}
	return s, true
}

// fakePoint makes up a point from the channel's figures: a slow wave, nothing recorded
// before the last six hours.
func fakePoint(c figures, t, step int64) point {
	p := point{T: t}
	if t < time.Now().Unix()-6*3600 {
		return p
	}
	wave := 1 + 0.3*math.Sin(float64(t)/600)
	p.GatewayMbps = c.GatewayMbps * (2 - wave)
	p.PeerMbps = c.PeerMbps * wave
	p.GatewayBytes = int64(p.GatewayMbps * 1e6 / 8 * float64(step))
	p.PeerBytes = int64(p.PeerMbps * 1e6 / 8 * float64(step))
	p.UploadedBytes = p.PeerBytes
	p.Offload = float64(p.PeerBytes) / float64(p.PeerBytes+p.GatewayBytes)
	p.ViewersAssisted = int(math.Round(float64(c.ViewersAssisted) * wave))
	p.ViewersDirect = c.ViewersDirect
	p.Startups = 1 + int(t/step%3)
	p.StartupMS = c.StartupMS * (2 - wave)
	if t/step%7 == 0 {
		p.Stalls = c.Stalls
	}
	return p
}

// rangeParams reads from, to and step with the contract's defaults and rules.
func rangeParams(r *http.Request) (from, to, step int64, err error) {
	q := r.URL.Query()
	num := func(key string, def int64) int64 {
		v := q.Get(key)
		if v == "" || err != nil {
			return def
		}
		n, perr := strconv.ParseInt(v, 10, 64)
		if perr != nil || n < 0 {
			err = fmt.Errorf("bad %s %q", key, v)
		}
		return n
	}
	to = num("to", time.Now().Unix())
	from = num("from", to-900)
	step = num("step", 10)
	switch {
	case err != nil:
	case from > to:
		err = fmt.Errorf("from %d after to %d", from, to)
	case step <= 0:
		err = fmt.Errorf("bad step %d", step)
	case step > 10:
		step = (step + 59) / 60 * 60
	}
	return from, to, step, err
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
