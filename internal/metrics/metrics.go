// Package metrics is a small, dependency-free metrics registry that writes
// the Prometheus text exposition format (version 0.0.4).
//
// It is meant for bounded label sets: every family keeps at most MaxSeries
// distinct label combinations (see Registry.SetMaxSeries); further
// combinations are folded into a shared no-op series and counted in
// rawflow_metrics_dropped_series_total{family="..."}.
//
// Registration mistakes (invalid names, duplicate families, wrong label
// counts) are programming errors and panic.
//
// The hot path is cheap: With looks the series up under a read lock without
// allocating (for label values whose encoded length fits in a small stack
// buffer), and Counter.Add/Inc, Gauge.Set/Add and Histogram.Observe are
// lock-free atomics.
package metrics

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// DefaultMaxSeries is the default bound on distinct label combinations per family.
const DefaultMaxSeries = 1000

// DroppedSeriesName is the name of the counter family that counts With calls
// (and func emissions) refused because a family reached its series bound.
const DroppedSeriesName = "rawflow_metrics_dropped_series_total"

// ContentType is the Content-Type of the text exposition format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Registry holds metric families and writes them in the text format.
// It is safe for concurrent use.
type Registry struct {
	mu       sync.RWMutex
	families []family // sorted by name
	names    map[string]struct{}

	maxSeries atomic.Int64
	dropped   *CounterVec
	bufs      sync.Pool
}

// NewRegistry returns an empty registry with MaxSeries = DefaultMaxSeries.
// The registry always contains the dropped-series counter family, which is
// only written once it has a series.
func NewRegistry() *Registry {
	r := &Registry{names: make(map[string]struct{})}
	r.maxSeries.Store(DefaultMaxSeries)
	r.bufs.New = func() any { return new(bytes.Buffer) }
	r.dropped = r.Counter(DroppedSeriesName,
		"Label combinations refused because a metric family reached its series bound.", "family")
	r.dropped.vec.unbounded = true // bounded by the number of families
	return r
}

// SetMaxSeries bounds the number of distinct label combinations per family
// (default DefaultMaxSeries). n <= 0 removes the bound. The bound applies to
// series created after the call; existing series are kept.
func (r *Registry) SetMaxSeries(n int) {
	if n <= 0 {
		r.maxSeries.Store(0)
		return
	}
	r.maxSeries.Store(int64(n))
}

func (r *Registry) limit() int {
	return int(r.maxSeries.Load())
}

func (r *Registry) drop(name string) {
	r.dropped.With(name).Inc()
}

// family is one metric family as seen by the writer.
type family interface {
	familyName() string
	write(b *bytes.Buffer)
}

func (r *Registry) register(f family) {
	name := f.familyName()
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.names[name]; dup {
		panic(fmt.Sprintf("metrics: family %q registered twice", name))
	}
	r.names[name] = struct{}{}
	i := sort.Search(len(r.families), func(i int) bool { return r.families[i].familyName() >= name })
	r.families = append(r.families, nil)
	copy(r.families[i+1:], r.families[i:])
	r.families[i] = f
}

// ---------------------------------------------------------------------------
// Name validation

func validMetricName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_' || c == ':' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z'):
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func validLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z'):
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func checkNames(name string, labels []string, histogram bool) []string {
	if !validMetricName(name) {
		panic(fmt.Sprintf("metrics: invalid metric name %q (must match [a-zA-Z_:][a-zA-Z0-9_:]*)", name))
	}
	seen := make(map[string]bool, len(labels))
	for _, l := range labels {
		if !validLabelName(l) {
			panic(fmt.Sprintf("metrics: %s: invalid label name %q (must match [a-zA-Z_][a-zA-Z0-9_]*)", name, l))
		}
		if strings.HasPrefix(l, "__") {
			panic(fmt.Sprintf("metrics: %s: label name %q is reserved (starts with __)", name, l))
		}
		if histogram && l == "le" {
			panic(fmt.Sprintf("metrics: %s: label name \"le\" is reserved for histograms", name))
		}
		if seen[l] {
			panic(fmt.Sprintf("metrics: %s: duplicate label name %q", name, l))
		}
		seen[l] = true
	}
	return append([]string(nil), labels...)
}

// ---------------------------------------------------------------------------
// Series vectors (shared by counters, gauges and histograms)

type meta struct {
	name   string
	help   string
	typ    string
	labels []string
}

func (m *meta) writeHeader(b *bytes.Buffer) {
	b.WriteString("# HELP ")
	b.WriteString(m.name)
	b.WriteByte(' ')
	writeEscaped(b, m.help, false)
	b.WriteString("\n# TYPE ")
	b.WriteString(m.name)
	b.WriteByte(' ')
	b.WriteString(m.typ)
	b.WriteByte('\n')
}

type entry[T any] struct {
	values []string
	pairs  string // `a="x",b="y"` (escaped, no braces)
	v      *T
}

type vec[T any] struct {
	meta
	reg       *Registry
	newT      func() *T
	noop      *T
	unbounded bool

	mu     sync.RWMutex
	m      map[string]*entry[T]
	sorted []*entry[T] // nil when a series was added since the last sort
}

func newVec[T any](r *Registry, m meta, newT func() *T) *vec[T] {
	v := &vec[T]{meta: m, reg: r, newT: newT, noop: newT(), m: make(map[string]*entry[T])}
	if len(m.labels) == 0 {
		// A label-less family has exactly one series; export it from the start.
		v.with(nil)
	}
	return v
}

// appendKey encodes label values unambiguously (length-prefixed).
func appendKey(b []byte, values []string) []byte {
	for _, s := range values {
		b = strconv.AppendUint(b, uint64(len(s)), 10)
		b = append(b, ':')
		b = append(b, s...)
	}
	return b
}

func (v *vec[T]) with(values []string) *T {
	if len(values) != len(v.labels) {
		panic(fmt.Sprintf("metrics: %s: got %d label values, want %d (%s)",
			v.name, len(values), len(v.labels), strings.Join(v.labels, ", ")))
	}
	var (
		e   *entry[T]
		n   int
		key string
	)
	switch len(values) {
	case 0:
	case 1:
		key = values[0]
	default:
		var buf [128]byte
		k := appendKey(buf[:0], values)
		v.mu.RLock()
		e, n = v.m[string(k)], len(v.m) // no allocation for the lookup
		v.mu.RUnlock()
		if e != nil {
			return e.v
		}
		key = string(k)
	}
	if len(values) < 2 {
		v.mu.RLock()
		e, n = v.m[key], len(v.m)
		v.mu.RUnlock()
		if e != nil {
			return e.v
		}
	}
	lim := v.reg.limit()
	if !v.unbounded && lim > 0 && n >= lim {
		v.reg.drop(v.name)
		return v.noop
	}
	return v.create(key, values, lim)
}

func (v *vec[T]) create(key string, values []string, lim int) *T {
	v.mu.Lock()
	if e := v.m[key]; e != nil {
		v.mu.Unlock()
		return e.v
	}
	if !v.unbounded && lim > 0 && len(v.m) >= lim {
		v.mu.Unlock()
		v.reg.drop(v.name)
		return v.noop
	}
	vals := make([]string, len(values))
	for i, s := range values {
		vals[i] = strings.ToValidUTF8(s, "\uFFFD")
	}
	e := &entry[T]{values: vals, pairs: labelPairs(v.labels, vals), v: v.newT()}
	v.m[key] = e
	v.sorted = nil
	v.mu.Unlock()
	return e.v
}

// snapshot returns the series sorted by label values.
func (v *vec[T]) snapshot() []*entry[T] {
	v.mu.RLock()
	s := v.sorted
	v.mu.RUnlock()
	if s != nil || v.len() == 0 {
		return s
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.sorted == nil {
		s := make([]*entry[T], 0, len(v.m))
		for _, e := range v.m {
			s = append(s, e)
		}
		sort.Slice(s, func(i, j int) bool { return lessValues(s[i].values, s[j].values) })
		v.sorted = s
	}
	return v.sorted
}

func (v *vec[T]) len() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.m)
}

func (v *vec[T]) familyName() string { return v.name }

func lessValues(a, b []string) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

func labelPairs(names, values []string) string {
	var b bytes.Buffer
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n)
		b.WriteString(`="`)
		writeEscaped(&b, values[i], true)
		b.WriteByte('"')
	}
	return b.String()
}

// writeEscaped escapes \ and newline, and " when quoted (label values).
func writeEscaped(b *bytes.Buffer, s string, quoted bool) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '"':
			if quoted {
				b.WriteString(`\"`)
			} else {
				b.WriteByte(c)
			}
		default:
			b.WriteByte(c)
		}
	}
}

func writeSample(b *bytes.Buffer, name, suffix, pairs string, value float64) {
	b.WriteString(name)
	b.WriteString(suffix)
	if pairs != "" {
		b.WriteByte('{')
		b.WriteString(pairs)
		b.WriteByte('}')
	}
	b.WriteByte(' ')
	b.Write(appendFloat(b.AvailableBuffer(), value))
	b.WriteByte('\n')
}

// appendFloat formats a sample value as Prometheus expects: +Inf, -Inf, NaN,
// integral values without exponent or fraction, others in the shortest
// representation that round-trips.
func appendFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, +1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	case f == math.Trunc(f) && math.Abs(f) < 1<<53:
		return strconv.AppendInt(b, int64(f), 10)
	default:
		return strconv.AppendFloat(b, f, 'g', -1, 64)
	}
}

// ---------------------------------------------------------------------------
// Float helpers

func addFloat(u *atomic.Uint64, x float64) {
	for {
		old := u.Load()
		nv := math.Float64bits(math.Float64frombits(old) + x)
		if u.CompareAndSwap(old, nv) {
			return
		}
	}
}

// ---------------------------------------------------------------------------
// Counters

// Counter is a monotonically increasing value.
type Counter struct {
	ints   atomic.Uint64 // integral increments (fast path)
	floats atomic.Uint64 // float64 bits of fractional increments
}

// Inc adds 1.
func (c *Counter) Inc() { c.ints.Add(1) }

// Add adds n. Negative or NaN n is ignored: a counter never decreases.
func (c *Counter) Add(n float64) {
	if !(n > 0) {
		return
	}
	if n < 1<<53 && n == math.Trunc(n) {
		c.ints.Add(uint64(n))
		return
	}
	addFloat(&c.floats, n)
}

// AddInt adds n (ignored when negative).
func (c *Counter) AddInt(n int64) {
	if n > 0 {
		c.ints.Add(uint64(n))
	}
}

// Value returns the current value.
func (c *Counter) Value() float64 {
	return float64(c.ints.Load()) + math.Float64frombits(c.floats.Load())
}

// CounterVec is a counter family with fixed label names.
type CounterVec struct{ vec *vec[Counter] }

// Counter registers a counter family.
func (r *Registry) Counter(name, help string, labels ...string) *CounterVec {
	m := meta{name: name, help: help, typ: "counter", labels: checkNames(name, labels, false)}
	v := &CounterVec{newVec(r, m, func() *Counter { return new(Counter) })}
	r.register(v)
	return v
}

// With returns the counter for the given label values (in registration
// order). It panics if the number of values is wrong. Beyond the series bound
// it returns a shared no-op counter.
func (v *CounterVec) With(values ...string) *Counter { return v.vec.with(values) }

func (v *CounterVec) familyName() string { return v.vec.name }

func (v *CounterVec) write(b *bytes.Buffer) { writeValues(b, v.vec) }

// writeValues writes a counter or gauge family: its header and one sample per series, or
// nothing while it has no series.
func writeValues[T any, P interface {
	*T
	Value() float64
}](b *bytes.Buffer, v *vec[T]) {
	s := v.snapshot()
	if len(s) == 0 {
		return
	}
	v.writeHeader(b)
	for _, e := range s {
		writeSample(b, v.name, "", e.pairs, P(e.v).Value())
	}
}

// ---------------------------------------------------------------------------
// Gauges

// Gauge is a value that can go up and down.
type Gauge struct{ bits atomic.Uint64 }

// Set sets the gauge to x.
func (g *Gauge) Set(x float64) { g.bits.Store(math.Float64bits(x)) }

// Add adds x (which may be negative).
func (g *Gauge) Add(x float64) { addFloat(&g.bits, x) }

// Inc adds 1.
func (g *Gauge) Inc() { g.Add(1) }

// Dec subtracts 1.
func (g *Gauge) Dec() { g.Add(-1) }

// Value returns the current value.
func (g *Gauge) Value() float64 { return math.Float64frombits(g.bits.Load()) }

// GaugeVec is a gauge family with fixed label names.
type GaugeVec struct{ vec *vec[Gauge] }

// Gauge registers a gauge family.
func (r *Registry) Gauge(name, help string, labels ...string) *GaugeVec {
	m := meta{name: name, help: help, typ: "gauge", labels: checkNames(name, labels, false)}
	v := &GaugeVec{newVec(r, m, func() *Gauge { return new(Gauge) })}
	r.register(v)
	return v
}

// With returns the gauge for the given label values; see CounterVec.With.
func (v *GaugeVec) With(values ...string) *Gauge { return v.vec.with(values) }

func (v *GaugeVec) familyName() string { return v.vec.name }

func (v *GaugeVec) write(b *bytes.Buffer) { writeValues(b, v.vec) }

// ---------------------------------------------------------------------------
// Histograms

// Histogram counts observations in fixed buckets.
type Histogram struct {
	upper  []float64       // bucket upper bounds, without +Inf
	counts []atomic.Uint64 // non-cumulative; len(upper)+1 (last is +Inf)
	sum    atomic.Uint64   // float64 bits
}

// Observe records x.
func (h *Histogram) Observe(x float64) {
	i := 0
	for i < len(h.upper) && !(x <= h.upper[i]) {
		i++
	}
	h.counts[i].Add(1)
	addFloat(&h.sum, x)
}

// HistogramVec is a histogram family with fixed buckets and label names.
type HistogramVec struct {
	vec    *vec[Histogram]
	upper  []float64
	leStrs []string
}

// Histogram registers a histogram family. buckets are the upper bounds and
// must be strictly increasing; a +Inf bucket is always added.
func (r *Registry) Histogram(name, help string, buckets []float64, labels ...string) *HistogramVec {
	m := meta{name: name, help: help, typ: "histogram", labels: checkNames(name, labels, true)}
	upper := append([]float64(nil), buckets...)
	if n := len(upper); n > 0 && math.IsInf(upper[n-1], +1) {
		upper = upper[:n-1]
	}
	for i, b := range upper {
		if math.IsNaN(b) || math.IsInf(b, 0) || (i > 0 && !(b > upper[i-1])) {
			panic(fmt.Sprintf("metrics: %s: buckets must be finite and strictly increasing, got %v", name, buckets))
		}
	}
	h := &HistogramVec{upper: upper}
	for _, b := range upper {
		h.leStrs = append(h.leStrs, string(appendFloat(nil, b)))
	}
	h.leStrs = append(h.leStrs, "+Inf")
	h.vec = newVec(r, m, func() *Histogram {
		return &Histogram{upper: upper, counts: make([]atomic.Uint64, len(upper)+1)}
	})
	r.register(h)
	return h
}

// With returns the histogram for the given label values; see CounterVec.With.
func (h *HistogramVec) With(values ...string) *Histogram { return h.vec.with(values) }

func (h *HistogramVec) familyName() string { return h.vec.name }

func (h *HistogramVec) write(b *bytes.Buffer) {
	s := h.vec.snapshot()
	if len(s) == 0 {
		return
	}
	name := h.vec.name
	h.vec.writeHeader(b)
	for _, e := range s {
		var cum uint64
		for i := range e.v.counts {
			cum += e.v.counts[i].Load()
			b.WriteString(name)
			b.WriteString("_bucket{")
			if e.pairs != "" {
				b.WriteString(e.pairs)
				b.WriteByte(',')
			}
			b.WriteString(`le="`)
			b.WriteString(h.leStrs[i])
			b.WriteString(`"} `)
			b.Write(strconv.AppendUint(b.AvailableBuffer(), cum, 10))
			b.WriteByte('\n')
		}
		// _count is derived from the buckets so it always equals le="+Inf".
		writeSample(b, name, "_sum", e.pairs, math.Float64frombits(e.v.sum.Load()))
		writeSample(b, name, "_count", e.pairs, float64(cum))
	}
}

// ---------------------------------------------------------------------------
// Funcs

type funcFamily struct {
	meta
	reg     *Registry
	collect func(emit func(value float64, labelValues ...string))
}

// CounterFunc registers a counter family whose series are produced at scrape
// time by collect. Emissions with identical label values are summed. collect
// runs without registry locks held, possibly concurrently with itself, and
// must not retain emit.
func (r *Registry) CounterFunc(name, help string, labels []string, collect func(emit func(value float64, labelValues ...string))) {
	r.registerFunc("counter", name, help, labels, collect)
}

// GaugeFunc registers a gauge family whose series are produced at scrape
// time by collect; see CounterFunc.
func (r *Registry) GaugeFunc(name, help string, labels []string, collect func(emit func(value float64, labelValues ...string))) {
	r.registerFunc("gauge", name, help, labels, collect)
}

func (r *Registry) registerFunc(typ, name, help string, labels []string, collect func(emit func(value float64, labelValues ...string))) {
	if collect == nil {
		panic(fmt.Sprintf("metrics: %s: nil collect func", name))
	}
	m := meta{name: name, help: help, typ: typ, labels: checkNames(name, labels, false)}
	r.register(&funcFamily{meta: m, reg: r, collect: collect})
}

func (f *funcFamily) familyName() string { return f.name }

type funcSample struct {
	values []string
	value  float64
}

// gather runs collect and returns the samples sorted by label values, with
// duplicates summed and at most MaxSeries distinct combinations.
func (f *funcFamily) gather() []funcSample {
	lim := f.reg.limit()
	idx := make(map[string]int)
	var samples []funcSample
	var key []byte
	dropped := 0
	f.collect(func(value float64, values ...string) {
		if len(values) != len(f.labels) {
			panic(fmt.Sprintf("metrics: %s: collect emitted %d label values, want %d (%s)",
				f.name, len(values), len(f.labels), strings.Join(f.labels, ", ")))
		}
		key = appendKey(key[:0], values)
		if i, ok := idx[string(key)]; ok {
			samples[i].value += value
			return
		}
		if lim > 0 && len(samples) >= lim {
			dropped++
			return
		}
		idx[string(key)] = len(samples)
		vals := make([]string, len(values))
		for i, v := range values {
			vals[i] = strings.ToValidUTF8(v, "\uFFFD")
		}
		samples = append(samples, funcSample{values: vals, value: value})
	})
	if dropped > 0 {
		f.reg.dropped.With(f.name).AddInt(int64(dropped))
	}
	sort.Slice(samples, func(i, j int) bool { return lessValues(samples[i].values, samples[j].values) })
	return samples
}

func (f *funcFamily) write(b *bytes.Buffer) { f.writeSamples(b, f.gather()) }

func (f *funcFamily) writeSamples(b *bytes.Buffer, samples []funcSample) {
	if len(samples) == 0 {
		return
	}
	f.writeHeader(b)
	for _, s := range samples {
		writeSample(b, f.name, "", labelPairs(f.labels, s.values), s.value)
	}
}

// ---------------------------------------------------------------------------
// Output

// WriteTo writes all families in the text exposition format: families sorted
// by name, series sorted by label values. Families without series are
// omitted. Func collectors all run before anything is written, so drops they
// cause are already included in this scrape's dropped-series counter.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	b := r.bufs.Get().(*bytes.Buffer)
	b.Reset()
	defer r.bufs.Put(b)
	r.render(b)
	n, err := w.Write(b.Bytes())
	return int64(n), err
}

func (r *Registry) render(b *bytes.Buffer) {
	r.mu.RLock()
	fams := append([]family(nil), r.families...)
	r.mu.RUnlock()
	gathered := make([][]funcSample, len(fams))
	for i, f := range fams {
		if ff, ok := f.(*funcFamily); ok {
			gathered[i] = ff.gather()
		}
	}
	for i, f := range fams {
		if ff, ok := f.(*funcFamily); ok {
			ff.writeSamples(b, gathered[i])
			continue
		}
		f.write(b)
	}
}

// Handler serves the registry (GET and HEAD only).
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		b := r.bufs.Get().(*bytes.Buffer)
		b.Reset()
		defer r.bufs.Put(b)
		r.render(b)
		h := w.Header()
		h.Set("Content-Type", ContentType)
		h.Set("Content-Length", strconv.Itoa(b.Len()))
		h.Set("Cache-Control", "no-store")
		if req.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(b.Bytes())
	})
}
