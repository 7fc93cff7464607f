package metrics

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func render(t testing.TB, r *Registry) string {
	t.Helper()
	var b bytes.Buffer
	n, err := r.WriteTo(&b)
	if err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	if n != int64(b.Len()) {
		t.Fatalf("WriteTo returned %d, wrote %d bytes", n, b.Len())
	}
	return b.String()
}

// goldenRegistry builds a registry with every kind of family.
func goldenRegistry() *Registry {
	r := NewRegistry()
	// Registered out of name order on purpose.
	viewers := r.Gauge("rawflow_test_viewers", "Current viewers.", "channel")
	viewers.With("b").Set(-1.5)
	viewers.With("a").Set(7)

	req := r.Counter("rawflow_test_requests_total", "Requests served.", "channel", "kind")
	req.With("b", "segment").Add(3)
	req.With("a", "segment").Inc()
	req.With("a", "playlist").Add(2.5)

	r.Counter("rawflow_test_events_total", "Events.").With().Add(1e6)

	r.GaugeFunc("rawflow_test_ratio", "Offload ratio.", []string{"channel"}, func(emit func(float64, ...string)) {
		emit(math.Inf(1), "c")
		emit(0.75, "b")
		emit(math.NaN(), "a")
	})
	r.CounterFunc("rawflow_test_bytes_total", "Bytes.", []string{"channel", "source"}, func(emit func(float64, ...string)) {
		emit(100, "a", "peers")
		emit(1e21, "b", "gateway")
		emit(50, "a", "gateway")
		emit(25, "a", "peers") // summed with the first emission
	})

	st := r.Histogram("rawflow_test_startup_seconds", "Startup time.", []float64{0.25, 0.5, 1, 2, 4, 8})
	for _, x := range []float64{0.125, 0.5, 3, 10} {
		st.With().Observe(x)
	}
	fetch := r.Histogram("rawflow_test_fetch_seconds", "Fetch time.", []float64{0.1, 1, math.Inf(1)}, "source")
	fetch.With("peers").Observe(0.05)
	fetch.With("gateway").Observe(2)
	return r
}

const golden = `# HELP rawflow_test_bytes_total Bytes.
# TYPE rawflow_test_bytes_total counter
rawflow_test_bytes_total{channel="a",source="gateway"} 50
rawflow_test_bytes_total{channel="a",source="peers"} 125
rawflow_test_bytes_total{channel="b",source="gateway"} 1e+21
# HELP rawflow_test_events_total Events.
# TYPE rawflow_test_events_total counter
rawflow_test_events_total 1000000
# HELP rawflow_test_fetch_seconds Fetch time.
# TYPE rawflow_test_fetch_seconds histogram
rawflow_test_fetch_seconds_bucket{source="gateway",le="0.1"} 0
rawflow_test_fetch_seconds_bucket{source="gateway",le="1"} 0
rawflow_test_fetch_seconds_bucket{source="gateway",le="+Inf"} 1
rawflow_test_fetch_seconds_sum{source="gateway"} 2
rawflow_test_fetch_seconds_count{source="gateway"} 1
rawflow_test_fetch_seconds_bucket{source="peers",le="0.1"} 1
rawflow_test_fetch_seconds_bucket{source="peers",le="1"} 1
rawflow_test_fetch_seconds_bucket{source="peers",le="+Inf"} 1
rawflow_test_fetch_seconds_sum{source="peers"} 0.05
rawflow_test_fetch_seconds_count{source="peers"} 1
# HELP rawflow_test_ratio Offload ratio.
# TYPE rawflow_test_ratio gauge
rawflow_test_ratio{channel="a"} NaN
rawflow_test_ratio{channel="b"} 0.75
rawflow_test_ratio{channel="c"} +Inf
# HELP rawflow_test_requests_total Requests served.
# TYPE rawflow_test_requests_total counter
rawflow_test_requests_total{channel="a",kind="playlist"} 2.5
rawflow_test_requests_total{channel="a",kind="segment"} 1
rawflow_test_requests_total{channel="b",kind="segment"} 3
# HELP rawflow_test_startup_seconds Startup time.
# TYPE rawflow_test_startup_seconds histogram
rawflow_test_startup_seconds_bucket{le="0.25"} 1
rawflow_test_startup_seconds_bucket{le="0.5"} 2
rawflow_test_startup_seconds_bucket{le="1"} 2
rawflow_test_startup_seconds_bucket{le="2"} 2
rawflow_test_startup_seconds_bucket{le="4"} 3
rawflow_test_startup_seconds_bucket{le="8"} 3
rawflow_test_startup_seconds_bucket{le="+Inf"} 4
rawflow_test_startup_seconds_sum 13.625
rawflow_test_startup_seconds_count 4
# HELP rawflow_test_viewers Current viewers.
# TYPE rawflow_test_viewers gauge
rawflow_test_viewers{channel="a"} 7
rawflow_test_viewers{channel="b"} -1.5
`

func TestGolden(t *testing.T) {
	r := goldenRegistry()
	got := render(t, r)
	if got != golden {
		t.Fatalf("output mismatch\n--- got ---\n%s\n--- want ---\n%s", got, golden)
	}
	// Rendering is repeatable (funcs are re-collected, nothing accumulates).
	if again := render(t, r); again != golden {
		t.Fatalf("second render differs:\n%s", again)
	}
}

func TestEmptyRegistry(t *testing.T) {
	r := NewRegistry()
	r.Counter("rawflow_test_unused_total", "Never used.", "channel")
	r.GaugeFunc("rawflow_test_nothing", "Emits nothing.", nil, func(func(float64, ...string)) {})
	if got := render(t, r); got != "" {
		t.Fatalf("families without series must be omitted, got:\n%s", got)
	}
}

func TestLabelLessFamilyExportedFromStart(t *testing.T) {
	r := NewRegistry()
	r.Counter("rawflow_test_a_total", "A.")
	r.Gauge("rawflow_test_b", "B.")
	want := "# HELP rawflow_test_a_total A.\n# TYPE rawflow_test_a_total counter\nrawflow_test_a_total 0\n" +
		"# HELP rawflow_test_b B.\n# TYPE rawflow_test_b gauge\nrawflow_test_b 0\n"
	if got := render(t, r); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestEscaping(t *testing.T) {
	r := NewRegistry()
	r.Gauge("rawflow_test_esc", "Help with \\ backslash,\nnewline and \"quotes\".", "v").
		With("a\\b\"c\nd").Set(1)
	r.GaugeFunc("rawflow_test_esc_func", "F.", []string{"v"}, func(emit func(float64, ...string)) {
		emit(2, "x\"y")
		emit(3, "bad\xffutf8")
	})
	want := `# HELP rawflow_test_esc Help with \\ backslash,\nnewline and "quotes".
# TYPE rawflow_test_esc gauge
rawflow_test_esc{v="a\\b\"c\nd"} 1
# HELP rawflow_test_esc_func F.
# TYPE rawflow_test_esc_func gauge
rawflow_test_esc_func{v="bad` + "\uFFFD" + `utf8"} 3
rawflow_test_esc_func{v="x\"y"} 2
`
	got := render(t, r)
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	if err := parseExposition(got); err != nil {
		t.Fatal(err)
	}
}

func TestSorting(t *testing.T) {
	r := NewRegistry()
	names := []string{"rawflow_z", "rawflow_a", "rawflow_m", "rawflow_b_total", "rawflow_b"}
	for _, n := range names {
		g := r.Gauge(n, "h", "x", "y")
		for _, xy := range [][2]string{{"b", "a"}, {"a", "b"}, {"a", "a"}, {"B", "z"}, {"", "q"}, {"a", "aa"}} {
			g.With(xy[0], xy[1]).Set(1)
		}
	}
	out := render(t, r)
	var fams, series []string
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			fams = append(fams, strings.Fields(rest)[0])
			continue
		}
		if strings.HasPrefix(line, "rawflow_z{") {
			series = append(series, strings.TrimSuffix(strings.TrimPrefix(line, "rawflow_z"), " 1"))
		}
	}
	wantFams := []string{"rawflow_a", "rawflow_b", "rawflow_b_total", "rawflow_m", "rawflow_z"}
	if fmt.Sprint(fams) != fmt.Sprint(wantFams) {
		t.Fatalf("families: got %v, want %v", fams, wantFams)
	}
	wantSeries := []string{`{x="",y="q"}`, `{x="B",y="z"}`, `{x="a",y="a"}`, `{x="a",y="aa"}`, `{x="a",y="b"}`, `{x="b",y="a"}`}
	if fmt.Sprint(series) != fmt.Sprint(wantSeries) {
		t.Fatalf("series: got %v, want %v", series, wantSeries)
	}
	// Adding a series after a render re-sorts.
	r2 := NewRegistry()
	c := r2.Counter("rawflow_c_total", "h", "k")
	c.With("m").Inc()
	render(t, r2)
	c.With("a").Inc()
	if got, want := render(t, r2), "# HELP rawflow_c_total h\n# TYPE rawflow_c_total counter\nrawflow_c_total{k=\"a\"} 1\nrawflow_c_total{k=\"m\"} 1\n"; got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestFormatFloat(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string
	}{
		{0, "0"}, {math.Copysign(0, -1), "0"}, {1, "1"}, {-3, "-3"}, {1e6, "1000000"},
		{123456789012345, "123456789012345"}, {1 << 52, "4503599627370496"},
		{1 << 53, "9.007199254740992e+15"}, {1e21, "1e+21"}, {0.1, "0.1"}, {2.5e-7, "2.5e-07"},
		{math.Inf(1), "+Inf"}, {math.Inf(-1), "-Inf"}, {math.NaN(), "NaN"},
	} {
		if got := string(appendFloat(nil, tc.in)); got != tc.want {
			t.Errorf("appendFloat(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCounterSemantics(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("rawflow_test_total", "h").With()
	c.Inc()
	c.Add(2)
	c.Add(0.5)
	c.AddInt(10)
	c.Add(-5)         // ignored
	c.Add(math.NaN()) // ignored
	c.AddInt(-1)      // ignored
	if got := c.Value(); got != 13.5 {
		t.Fatalf("counter = %v, want 13.5", got)
	}
	g := r.Gauge("rawflow_test_g", "h").With()
	g.Set(3)
	g.Add(-4.5)
	g.Inc()
	g.Dec()
	if got := g.Value(); got != -1.5 {
		t.Fatalf("gauge = %v, want -1.5", got)
	}
	// Same label values return the same series.
	v := r.Counter("rawflow_test_v_total", "h", "a", "b")
	if v.With("x", "y") != v.With("x", "y") {
		t.Fatal("With returned different series for equal labels")
	}
	// The key encoding is unambiguous.
	if v.With("ab", "c") == v.With("a", "bc") {
		t.Fatal("label values ab,c and a,bc collide")
	}
}

func TestSeriesBound(t *testing.T) {
	r := NewRegistry()
	r.SetMaxSeries(2)
	c := r.Counter("rawflow_test_total", "h", "channel")
	a := c.With("a")
	b := c.With("b")
	x := c.With("c") // over the bound: no-op
	y := c.With("d")
	if x != y {
		t.Fatal("overflow series should be shared")
	}
	if x == a || x == b {
		t.Fatal("overflow series must not alias a real series")
	}
	x.Add(100)
	if c.With("a") != a {
		t.Fatal("existing series must still be returned at the bound")
	}
	a.Inc()

	h := r.Histogram("rawflow_test_seconds", "h", []float64{1}, "k")
	h.With("1").Observe(0.5)
	h.With("2").Observe(0.5)
	h.With("3").Observe(0.5) // dropped

	r.GaugeFunc("rawflow_test_func", "h", []string{"k"}, func(emit func(float64, ...string)) {
		emit(1, "a")
		emit(2, "b")
		emit(3, "c") // dropped (each scrape)
		emit(4, "a") // summed into an existing series: not a drop
	})

	want := `# HELP rawflow_metrics_dropped_series_total Label combinations refused because a metric family reached its series bound.
# TYPE rawflow_metrics_dropped_series_total counter
rawflow_metrics_dropped_series_total{family="rawflow_test_func"} 1
rawflow_metrics_dropped_series_total{family="rawflow_test_seconds"} 1
rawflow_metrics_dropped_series_total{family="rawflow_test_total"} 2
# HELP rawflow_test_func h
# TYPE rawflow_test_func gauge
rawflow_test_func{k="a"} 5
rawflow_test_func{k="b"} 2
# HELP rawflow_test_seconds h
# TYPE rawflow_test_seconds histogram
rawflow_test_seconds_bucket{k="1",le="1"} 1
rawflow_test_seconds_bucket{k="1",le="+Inf"} 1
rawflow_test_seconds_sum{k="1"} 0.5
rawflow_test_seconds_count{k="1"} 1
rawflow_test_seconds_bucket{k="2",le="1"} 1
rawflow_test_seconds_bucket{k="2",le="+Inf"} 1
rawflow_test_seconds_sum{k="2"} 0.5
rawflow_test_seconds_count{k="2"} 1
# HELP rawflow_test_total h
# TYPE rawflow_test_total counter
rawflow_test_total{channel="a"} 1
rawflow_test_total{channel="b"} 0
`
	if got := render(t, r); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	// The func drop is counted again on every scrape.
	if !strings.Contains(render(t, r), `rawflow_metrics_dropped_series_total{family="rawflow_test_func"} 2`) {
		t.Fatal("func drops not counted per scrape")
	}

	// Raising the bound (or removing it) lets new series in.
	r.SetMaxSeries(0)
	c.With("c").Inc()
	if !strings.Contains(render(t, r), `rawflow_test_total{channel="c"} 1`) {
		t.Fatal("series not created after removing the bound")
	}
}

func TestDefaultMaxSeries(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("rawflow_test_total", "h", "k")
	for i := 0; i < DefaultMaxSeries+10; i++ {
		c.With(strconv.Itoa(i)).Inc()
	}
	if n := c.vec.len(); n != DefaultMaxSeries {
		t.Fatalf("series = %d, want %d", n, DefaultMaxSeries)
	}
	if got := r.dropped.With("rawflow_test_total").Value(); got != 10 {
		t.Fatalf("dropped = %v, want 10", got)
	}
}

func TestRegistrationPanics(t *testing.T) {
	mustPanic := func(name, wantSubstr string, f func()) {
		t.Helper()
		defer func() {
			t.Helper()
			p := recover()
			if p == nil {
				t.Errorf("%s: no panic", name)
				return
			}
			if msg := fmt.Sprint(p); !strings.Contains(msg, wantSubstr) {
				t.Errorf("%s: panic %q does not contain %q", name, msg, wantSubstr)
			}
		}()
		f()
	}
	r := NewRegistry()
	mustPanic("empty name", "invalid metric name", func() { r.Counter("", "h") })
	mustPanic("leading digit", "invalid metric name", func() { r.Counter("1abc", "h") })
	mustPanic("dash", "invalid metric name", func() { r.Gauge("a-b", "h") })
	mustPanic("unicode", "invalid metric name", func() { r.Gauge("café", "h") })
	mustPanic("label colon", "invalid label name", func() { r.Counter("ok_total", "h", "a:b") })
	mustPanic("label digit", "invalid label name", func() { r.Counter("ok_total", "h", "0a") })
	mustPanic("reserved label", "reserved", func() { r.Counter("ok_total", "h", "__name__") })
	mustPanic("le label", "reserved for histograms", func() { r.Histogram("ok_seconds", "h", []float64{1}, "le") })
	mustPanic("dup label", "duplicate label", func() { r.Gauge("ok", "h", "a", "a") })
	mustPanic("buckets order", "strictly increasing", func() { r.Histogram("ok_seconds", "h", []float64{1, 1}) })
	mustPanic("buckets nan", "strictly increasing", func() { r.Histogram("ok_seconds", "h", []float64{math.NaN()}) })
	mustPanic("nil collect", "nil collect", func() { r.GaugeFunc("ok_f", "h", nil, nil) })
	mustPanic("reserved family", "registered twice", func() { r.Counter(DroppedSeriesName, "h") })

	r.Counter("dup_total", "h")
	mustPanic("duplicate family", "registered twice", func() { r.Gauge("dup_total", "h") })
	c := r.Counter("labels_total", "h", "a", "b")
	mustPanic("too few values", "got 1 label values, want 2", func() { c.With("x") })
	mustPanic("too many values", "got 3 label values, want 2", func() { c.With("x", "y", "z") })

	r2 := NewRegistry()
	r2.CounterFunc("f_total", "h", []string{"a"}, func(emit func(float64, ...string)) { emit(1) })
	mustPanic("func label count", "collect emitted 0 label values, want 1", func() { _, _ = r2.WriteTo(io.Discard) })

	// Valid edge cases do not panic.
	r.Gauge("_:colons:ok", "h", "_x", "A9")
	r.Histogram("inf_bucket_seconds", "h", nil)
}

func TestConcurrent(t *testing.T) {
	r := NewRegistry()
	r.SetMaxSeries(50)
	c := r.Counter("rawflow_test_total", "h", "channel", "kind")
	g := r.Gauge("rawflow_test_g", "h", "channel")
	h := r.Histogram("rawflow_test_seconds", "h", []float64{0.5, 1}, "channel")
	r.CounterFunc("rawflow_test_func_total", "h", []string{"channel"}, func(emit func(float64, ...string)) {
		emit(c.With("ch0", "segment").Value(), "ch0")
	})
	for i := 0; i < 4; i++ { // real series exist before the overflow ones fill the bound
		c.With("ch"+strconv.Itoa(i), "segment")
		c.With("ch"+strconv.Itoa(i), "playlist")
	}
	const workers, iters = 8, 2000
	var wg sync.WaitGroup
	stop := make(chan struct{})
	scrapes := make(chan error, 1)
	go func() {
		defer close(scrapes)
		for {
			select {
			case <-stop:
				return
			default:
			}
			var b bytes.Buffer
			if _, err := r.WriteTo(&b); err != nil {
				scrapes <- err
				return
			}
			if err := parseExposition(b.String()); err != nil {
				scrapes <- err
				return
			}
		}
	}()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < iters; i++ {
				ch := "ch" + strconv.Itoa(i%4)
				c.With(ch, "segment").Inc()
				c.With(ch, "playlist").Add(0.5)
				c.With("overflow", strconv.Itoa(w*iters+i)).Inc() // mostly beyond the bound
				g.With(ch).Add(1)
				g.With(ch).Add(-1)
				h.With(ch).Observe(float64(i%3) / 2)
				if i%500 == 0 {
					r.SetMaxSeries(50)
				}
			}
		}(w)
	}
	wg.Wait()
	close(stop)
	if err := <-scrapes; err != nil {
		t.Fatalf("scrape during writes: %v", err)
	}
	for i := 0; i < 4; i++ {
		ch := "ch" + strconv.Itoa(i)
		if got, want := c.With(ch, "segment").Value(), float64(workers*iters/4); got != want {
			t.Errorf("%s segment = %v, want %v", ch, got, want)
		}
		if got, want := c.With(ch, "playlist").Value(), float64(workers*iters/4)/2; got != want {
			t.Errorf("%s playlist = %v, want %v", ch, got, want)
		}
		if got := g.With(ch).Value(); got != 0 {
			t.Errorf("%s gauge = %v, want 0", ch, got)
		}
	}
	if n := c.vec.len(); n != 50 {
		t.Errorf("series = %d, want 50", n)
	}
	// Every overflow With was counted: 8 real series + 42 overflow ones admitted.
	if got, want := r.dropped.With("rawflow_test_total").Value(), float64(workers*iters-42); got != want {
		t.Errorf("dropped = %v, want %v", got, want)
	}
	if err := parseExposition(render(t, r)); err != nil {
		t.Fatal(err)
	}
}

func TestHandler(t *testing.T) {
	r := goldenRegistry()
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()

	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
		t.Fatalf("Content-Type = %q", ct)
	}
	if string(body) != golden {
		t.Fatalf("GET body:\n%s", body)
	}

	req, _ := http.NewRequest(http.MethodHead, srv.URL, nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(body) != 0 {
		t.Fatalf("HEAD: status %d, %d body bytes", resp.StatusCode, len(body))
	}
	if ct := resp.Header.Get("Content-Type"); ct != ContentType {
		t.Fatalf("HEAD Content-Type = %q", ct)
	}
	if resp.ContentLength != int64(len(golden)) {
		t.Fatalf("HEAD Content-Length = %d, want %d", resp.ContentLength, len(golden))
	}

	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
		req, _ := http.NewRequest(m, srv.URL, strings.NewReader("x"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s: status %d, want 405", m, resp.StatusCode)
		}
		if a := resp.Header.Get("Allow"); a != "GET, HEAD" {
			t.Errorf("%s: Allow = %q", m, a)
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestWriteToError(t *testing.T) {
	if _, err := goldenRegistry().WriteTo(failWriter{}); err != io.ErrClosedPipe {
		t.Fatalf("err = %v", err)
	}
}

// ---------------------------------------------------------------------------
// A small strict parser for the text exposition format (0.0.4).

type parsedSample struct {
	name   string
	labels map[string]string
	value  float64
}

func isMetricName(s string) bool { return validMetricName(s) }
func isLabelName(s string) bool  { return validLabelName(s) }

// parseExposition checks that text is valid exposition format: every line is
// a HELP/TYPE comment or a sample; a family's HELP and TYPE come once and
// before its samples; samples of a family are contiguous; no duplicate
// series; histograms have cumulative buckets ending in +Inf that equal _count.
func parseExposition(text string) error {
	if text == "" {
		return nil
	}
	if !strings.HasSuffix(text, "\n") {
		return fmt.Errorf("output does not end with a newline")
	}
	types := map[string]string{}
	helps := map[string]bool{}
	finished := map[string]bool{}
	seen := map[string]bool{}
	current := ""
	var hist []parsedSample // samples of the current histogram family
	closeFamily := func() error {
		if current != "" {
			finished[current] = true
			if types[current] == "histogram" {
				if err := checkHistogram(current, hist); err != nil {
					return err
				}
			}
		}
		hist = nil
		return nil
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	for ln := 1; sc.Scan(); ln++ {
		line := sc.Text()
		fail := func(format string, a ...any) error {
			return fmt.Errorf("line %d %q: %s", ln, line, fmt.Sprintf(format, a...))
		}
		if strings.HasPrefix(line, "#") {
			f := strings.SplitN(line, " ", 4)
			if len(f) < 3 || f[0] != "#" || (f[1] != "HELP" && f[1] != "TYPE") {
				return fail("bad comment")
			}
			name := f[2]
			if !isMetricName(name) {
				return fail("bad metric name")
			}
			if name != current {
				if err := closeFamily(); err != nil {
					return err
				}
				if finished[name] {
					return fail("family %s is not contiguous", name)
				}
				current = name
			}
			switch f[1] {
			case "HELP":
				if helps[name] || types[name] != "" {
					return fail("HELP repeated or after TYPE")
				}
				helps[name] = true
				if len(f) == 4 {
					if err := checkEscapes(f[3], false); err != nil {
						return fail("%v", err)
					}
				}
			case "TYPE":
				if types[name] != "" || len(f) != 4 {
					return fail("TYPE repeated or missing")
				}
				switch f[3] {
				case "counter", "gauge", "histogram", "summary", "untyped":
				default:
					return fail("unknown type %q", f[3])
				}
				types[name] = f[3]
			}
			continue
		}
		s, err := parseSampleLine(line)
		if err != nil {
			return fail("%v", err)
		}
		fam := s.name
		if current != "" && types[current] == "histogram" {
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if s.name == current+suf {
					fam = current
				}
			}
		}
		if fam != current {
			return fail("sample outside its family's block (current family %q)", current)
		}
		if types[fam] == "" {
			return fail("sample before TYPE")
		}
		if types[fam] != "histogram" && s.name != fam {
			return fail("bad sample name")
		}
		if types[fam] == "counter" && (s.value < 0 || math.IsNaN(s.value)) {
			return fail("counter value %v", s.value)
		}
		id := seriesID(s)
		if seen[id] {
			return fail("duplicate series")
		}
		seen[id] = true
		if types[fam] == "histogram" {
			hist = append(hist, s)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return closeFamily()
}

func seriesID(s parsedSample) string {
	keys := make([]string, 0, len(s.labels))
	for k, v := range s.labels {
		keys = append(keys, k+"="+strconv.Quote(v))
	}
	sortStrings(keys)
	return s.name + "{" + strings.Join(keys, ",") + "}"
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func checkEscapes(s string, quoted bool) error {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 >= len(s) {
				return fmt.Errorf("dangling backslash")
			}
			i++
			switch s[i] {
			case '\\', 'n':
			case '"':
				if !quoted {
					return fmt.Errorf(`\" in HELP`)
				}
			default:
				return fmt.Errorf("bad escape \\%c", s[i])
			}
		case '\n':
			return fmt.Errorf("raw newline")
		case '"':
			if quoted {
				return fmt.Errorf("unescaped quote")
			}
		}
	}
	return nil
}

func parseSampleLine(line string) (parsedSample, error) {
	s := parsedSample{labels: map[string]string{}}
	i := 0
	for i < len(line) && line[i] != '{' && line[i] != ' ' {
		i++
	}
	s.name = line[:i]
	if !isMetricName(s.name) {
		return s, fmt.Errorf("bad metric name %q", s.name)
	}
	if i < len(line) && line[i] == '{' {
		i++
		for {
			if i >= len(line) {
				return s, fmt.Errorf("unterminated labels")
			}
			if line[i] == '}' {
				if len(s.labels) == 0 {
					return s, fmt.Errorf("empty label set written as {}")
				}
				i++
				break
			}
			j := i
			for j < len(line) && line[j] != '=' {
				j++
			}
			lname := line[i:j]
			if !isLabelName(lname) {
				return s, fmt.Errorf("bad label name %q", lname)
			}
			if _, dup := s.labels[lname]; dup {
				return s, fmt.Errorf("duplicate label %q", lname)
			}
			if j+1 >= len(line) || line[j+1] != '"' {
				return s, fmt.Errorf("label value not quoted")
			}
			var val strings.Builder
			k := j + 2
			for ; k < len(line) && line[k] != '"'; k++ {
				if line[k] == '\\' {
					k++
					if k >= len(line) {
						return s, fmt.Errorf("dangling backslash")
					}
					switch line[k] {
					case '\\':
						val.WriteByte('\\')
					case '"':
						val.WriteByte('"')
					case 'n':
						val.WriteByte('\n')
					default:
						return s, fmt.Errorf("bad escape in label value")
					}
					continue
				}
				val.WriteByte(line[k])
			}
			if k >= len(line) {
				return s, fmt.Errorf("unterminated label value")
			}
			s.labels[lname] = val.String()
			i = k + 1
			if i < len(line) && line[i] == ',' {
				i++
				if i < len(line) && line[i] == '}' {
					return s, fmt.Errorf("trailing comma")
				}
			} else if i >= len(line) || line[i] != '}' {
				return s, fmt.Errorf("expected , or }")
			}
		}
	}
	if i >= len(line) || line[i] != ' ' {
		return s, fmt.Errorf("missing space before value")
	}
	vs := line[i+1:]
	if strings.Contains(vs, " ") {
		return s, fmt.Errorf("timestamps or extra fields are not expected")
	}
	v, err := parseValue(vs)
	if err != nil {
		return s, err
	}
	s.value = v
	return s, nil
}

// parseValue accepts only the spellings Prometheus writes: decimal or
// exponent floats, +Inf, -Inf, NaN.
func parseValue(s string) (float64, error) {
	switch s {
	case "+Inf":
		return math.Inf(1), nil
	case "-Inf":
		return math.Inf(-1), nil
	case "NaN":
		return math.NaN(), nil
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789.eE+-", c) {
			return 0, fmt.Errorf("bad value %q", s)
		}
	}
	return strconv.ParseFloat(s, 64)
}

func checkHistogram(name string, samples []parsedSample) error {
	type state struct {
		last             float64
		lastLE           float64
		hasInf, hasCount bool
		inf, count       float64
	}
	series := map[string]*state{}
	key := func(s parsedSample) string {
		c := parsedSample{name: "", labels: map[string]string{}}
		for k, v := range s.labels {
			if k != "le" {
				c.labels[k] = v
			}
		}
		return seriesID(c)
	}
	for _, s := range samples {
		k := key(s)
		st := series[k]
		if st == nil {
			st = &state{lastLE: math.Inf(-1)}
			series[k] = st
		}
		switch s.name {
		case name + "_bucket":
			les, ok := s.labels["le"]
			if !ok {
				return fmt.Errorf("%s: bucket without le", name)
			}
			le, err := parseValue(les)
			if err != nil {
				return fmt.Errorf("%s: bad le %q", name, les)
			}
			if !(le > st.lastLE) || s.value < st.last {
				return fmt.Errorf("%s: buckets not increasing/cumulative", name)
			}
			st.last, st.lastLE = s.value, le
			if math.IsInf(le, 1) {
				st.hasInf, st.inf = true, s.value
			}
		case name + "_count":
			st.hasCount, st.count = true, s.value
		case name + "_sum":
		default:
			return fmt.Errorf("%s: unexpected sample %s", name, s.name)
		}
	}
	for k, st := range series {
		if !st.hasInf || !st.hasCount || st.inf != st.count {
			return fmt.Errorf("%s%s: +Inf bucket (%v) and _count (%v) missing or different", name, k, st.inf, st.count)
		}
	}
	return nil
}

func TestOutputParses(t *testing.T) {
	if err := parseExposition(golden); err != nil {
		t.Fatalf("golden: %v", err)
	}
	// A messier registry: odd label values, many series, all kinds.
	r := NewRegistry()
	r.SetMaxSeries(20)
	c := r.Counter("rawflow_parse_total", "Help \\ with\nodd \"chars\".", "a", "b")
	h := r.Histogram("rawflow_parse_seconds", "h", []float64{0.001, 0.01, 0.1, 1, 10}, "a")
	weird := []string{"", " ", "{", "}", ",", "=", "\"", "\\", "\n", "a\\n", "ü", "\t", "#", "x y"}
	for i, w := range weird {
		c.With(w, strconv.Itoa(i)).Add(float64(i) * 1.5)
		h.With(w).Observe(float64(i) / 3)
	}
	r.GaugeFunc("rawflow_parse_g", "g", []string{"v"}, func(emit func(float64, ...string)) {
		for i, w := range weird {
			emit(float64(-i)/7, w)
		}
		emit(math.Inf(-1), "neg")
	})
	out := render(t, r)
	if err := parseExposition(out); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// Round trip: label values survive escaping.
	found := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(line, "rawflow_parse_total{") {
			s, err := parseSampleLine(line)
			if err != nil {
				t.Fatal(err)
			}
			i, _ := strconv.Atoi(s.labels["b"])
			if s.labels["a"] != weird[i] || s.value != float64(i)*1.5 {
				t.Errorf("round trip: %q -> %v", line, s)
			}
			found++
		}
	}
	if found != len(weird) {
		t.Fatalf("found %d counter series, want %d", found, len(weird))
	}
	// The parser itself rejects bad input.
	for _, bad := range []string{
		"foo 1", // no TYPE
		"# TYPE foo counter\nfoo{a=\"b\\x\"} 1\n", // bad escape
		"# TYPE foo counter\nfoo{a=\"b\"}1\n",     // no space
		"# TYPE foo counter\nfoo 1e+\n",           // bad number
		"# TYPE foo counter\nfoo 1\nfoo 2\n",      // duplicate
		"# TYPE foo counter\nfoo{} 1\n",           // empty braces
		"# TYPE foo counter\nfoo{a=\"1\",} 1\n",   // trailing comma
		"# TYPE foo gauge\nfoo inf\n",             // wrong Inf spelling
		"# TYPE foo counter\nfoo 1",               // no final newline
		"# TYPE foo histogram\nfoo_bucket{le=\"1\"} 2\nfoo_bucket{le=\"+Inf\"} 1\nfoo_count 1\n", // not cumulative
		"# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na 2\n",                                        // not contiguous
	} {
		if err := parseExposition(bad); err == nil {
			t.Errorf("parser accepted %q", bad)
		}
	}
}

// ---------------------------------------------------------------------------
// Benchmarks

func BenchmarkCounterWith(b *testing.B) {
	r := NewRegistry()
	c := r.Counter("rawflow_bench_requests_total", "h", "channel", "kind")
	channels := []string{"news", "sport", "music", "kids"}
	kinds := []string{"playlist", "segment", "tracker"}
	for _, ch := range channels {
		for _, k := range kinds {
			c.With(ch, k)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		c.With(channels[i&3], kinds[i%3]).Inc()
	}
}

func BenchmarkCounterWithParallel(b *testing.B) {
	r := NewRegistry()
	c := r.Counter("rawflow_bench_bytes_total", "h", "channel")
	c.With("news")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.With("news").Add(1316)
		}
	})
}

func BenchmarkHistogramObserve(b *testing.B) {
	r := NewRegistry()
	h := r.Histogram("rawflow_bench_seconds", "h", []float64{0.25, 0.5, 1, 2, 4, 8}).With()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Observe(float64(i&15) / 2)
	}
}

// BenchmarkWriteTo renders a registry shaped like a busy gateway: 20
// channels, ~10 families, a func family and a histogram (~500 lines).
func BenchmarkWriteTo(b *testing.B) {
	r := NewRegistry()
	req := r.Counter("rawflow_gateway_requests_total", "h", "channel", "kind")
	egress := r.Counter("rawflow_gateway_egress_bytes_total", "h", "channel")
	win := r.Gauge("rawflow_gateway_window_segments", "h", "channel")
	viewers := r.Gauge("rawflow_gateway_viewers", "h", "channel", "kind")
	swarm := r.Counter("rawflow_swarm_bytes_total", "h", "channel", "source")
	fetch := r.Histogram("rawflow_gateway_fetch_seconds", "h", []float64{0.05, 0.1, 0.25, 0.5, 1, 2}, "channel")
	var channels []string
	for i := 0; i < 20; i++ {
		ch := fmt.Sprintf("channel-%02d", i)
		channels = append(channels, ch)
		for _, k := range []string{"playlist", "segment", "tracker"} {
			req.With(ch, k).Add(float64(i * 1000))
		}
		egress.With(ch).Add(float64(i) * 1.5e9)
		win.With(ch).Set(6)
		viewers.With(ch, "assisted").Set(float64(i * 10))
		viewers.With(ch, "direct").Set(float64(i))
		for _, s := range []string{"gateway", "peers", "uploaded"} {
			swarm.With(ch, s).Add(float64(i) * 7e8)
		}
		fetch.With(ch).Observe(float64(i) / 10)
	}
	r.GaugeFunc("rawflow_swarm_offload_ratio", "h", []string{"channel"}, func(emit func(float64, ...string)) {
		for i, ch := range channels {
			emit(float64(i)/20, ch)
		}
	})
	var size int
	b.ReportAllocs()
	for b.Loop() {
		n, err := r.WriteTo(io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		size = int(n)
	}
	b.ReportMetric(float64(size), "bytes/scrape")
}
