package swarm

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Stats over time: every report (a proxy's announce, a gateway's egress flush) is added to
// the 10-second and the 1-minute bucket of its time; the dashboard reads them back. The
// buckets live in the registry, so every gateway of a fleet shows one picture.
const (
	// BucketStep10 and BucketStep60 are the widths of the two bucket series.
	BucketStep10 = 10 * time.Second
	BucketStep60 = time.Minute
	// BucketRetention10 and BucketRetention60 are how long each is kept.
	BucketRetention10 = 24 * time.Hour
	BucketRetention60 = 7 * 24 * time.Hour
	// MaxBuckets bounds the buckets one Buckets call reads.
	MaxBuckets = 12000
	// maxBucketFields bounds the fields of one bucket: reporters choose group names, and
	// what a bucket holds must not grow with them without bound. Past it, new breakdown
	// rows are not recorded (totals already there still are).
	maxBucketFields = 2048
)

// Sample is one report's worth of a channel's stats, added to the buckets of its time.
type Sample struct {
	// Gateway marks a gateway's own sample (its egress, the bans, viewer gauges): it
	// belongs to no group.
	Gateway bool
	// Group is the reporting peer's group ("" for ungrouped peers).
	Group string
	// Counters are the deltas reported.
	Counters
	// Renditions splits Counters by rendition ("" for a channel's only media playlist).
	Renditions map[string]Counters
	// FedBy is the bytes the reporter got from peers, by the sending peer's group.
	FedBy map[string]int64
	// Paths is the bytes the reporter got from peers, by how they travelled (PeerPaths).
	Paths map[string]int64
	// Viewers, when set, records the viewer gauges.
	Viewers *Viewers
}

// Viewers are viewer gauges at one time: Assisted is the fleet-wide number of proxies
// (every gateway writes the same figure), Direct the players a gateway serves itself (each
// gateway writes its own, under its ID; they add up).
type Viewers struct {
	GatewayID string
	Assisted  int64
	Direct    int64
}

// Bucket is a channel's stats over one step of time.
type Bucket struct {
	Start time.Time
	// Counters are the totals of the step.
	Counters
	// Renditions and Groups split them by rendition and by reporting group.
	Renditions map[string]Counters
	Groups     map[string]Counters
	// Feeds says which group's peers fed which group's, in bytes.
	Feeds []Feed
	// Paths says how the bytes each group's peers got from peers travelled.
	Paths []PathBytes
	// ViewersAssisted and ViewersDirect are the viewer gauges (the highest of the step).
	ViewersAssisted int64
	ViewersDirect   int64
}

// Feed is the bytes the peers of group To got from the peers of group From.
type Feed struct {
	From  string `json:"from"`
	To    string `json:"to"`
	Bytes int64  `json:"bytes"`
}

// PathBytes is the bytes the peers of Group got from peers over Path (PeerPaths).
type PathBytes struct {
	Path  string `json:"path"`
	Group string `json:"group"`
	Bytes int64  `json:"bytes"`
}

// checkSample validates a sample's names and bounds (announces are validated already; this
// keeps the registry safe whatever calls it).
func checkSample(channel string, s Sample) error {
	if err := checkChannel(channel); err != nil {
		return err
	}
	if !groupRe.MatchString(s.Group) || len(s.Renditions) > MaxReportRenditions || len(s.FedBy) > MaxFedBy {
		return badf("sample: bad group or too many breakdown rows")
	}
	for r := range s.Renditions {
		if !ValidRendition(r) {
			return badf("sample: rendition %q", r)
		}
	}
	for g := range s.FedBy {
		if !groupRe.MatchString(g) {
			return badf("sample: fed_by group %q", g)
		}
	}
	for path := range s.Paths {
		if !ValidPeerPath(path) {
			return badf("sample: path %q", path)
		}
	}
	if s.Viewers != nil && (strings.ContainsAny(s.Viewers.GatewayID, "|") || len(s.Viewers.GatewayID) > 64) {
		return badf("sample: gateway id %q", s.Viewers.GatewayID)
	}
	return nil
}

// encodeSample turns a sample into the bucket fields it adds to (increments) and sets
// (gauges): t|F totals, r|R|F per rendition, g|G|F per group, f|A|B feeds, va and vd|GW.
func encodeSample(s Sample) (incr, set map[string]int64) {
	incr, set = map[string]int64{}, map[string]int64{}
	add := func(prefix string, c Counters) {
		for _, f := range counterFields(&c) {
			if *f.ptr != 0 {
				incr[prefix+f.name] = SatAdd(incr[prefix+f.name], *f.ptr)
			}
		}
	}
	add("t|", s.Counters)
	for r, c := range s.Renditions {
		add("r|"+r+"|", c)
	}
	if !s.Gateway {
		add("g|"+s.Group+"|", s.Counters)
		for from, n := range s.FedBy {
			if n != 0 {
				incr["f|"+from+"|"+s.Group] = SatAdd(incr["f|"+from+"|"+s.Group], n)
			}
		}
		for path, n := range s.Paths {
			if n != 0 {
				incr["p|"+path+"|"+s.Group] = SatAdd(incr["p|"+path+"|"+s.Group], n)
			}
		}
	}
	if v := s.Viewers; v != nil {
		set["va"] = v.Assisted
		set["vd|"+v.GatewayID] = v.Direct
	}
	return incr, set
}

// decodeBucket reads a bucket's fields back (unknown or malformed fields are skipped).
func decodeBucket(start time.Time, fields map[string]int64) Bucket {
	b := Bucket{Start: start}
	counter := func(c *Counters, name string, v int64) {
		for _, f := range counterFields(c) {
			if f.name == name {
				*f.ptr = SatAdd(*f.ptr, v)
				return
			}
		}
	}
	into := func(m *map[string]Counters, key, name string, v int64) {
		if *m == nil {
			*m = map[string]Counters{}
		}
		c := (*m)[key]
		counter(&c, name, v)
		(*m)[key] = c
	}
	for k, v := range fields {
		parts := strings.Split(k, "|")
		switch {
		case k == "va":
			b.ViewersAssisted = v
		case parts[0] == "vd" && len(parts) == 2:
			b.ViewersDirect = SatAdd(b.ViewersDirect, v)
		case parts[0] == "t" && len(parts) == 2:
			counter(&b.Counters, parts[1], v)
		case parts[0] == "r" && len(parts) == 3:
			into(&b.Renditions, parts[1], parts[2], v)
		case parts[0] == "g" && len(parts) == 3:
			into(&b.Groups, parts[1], parts[2], v)
		case parts[0] == "f" && len(parts) == 3:
			b.Feeds = append(b.Feeds, Feed{From: parts[1], To: parts[2], Bytes: v})
		case parts[0] == "p" && len(parts) == 3:
			b.Paths = append(b.Paths, PathBytes{Path: parts[1], Group: parts[2], Bytes: v})
		}
	}
	sortFeeds(b.Feeds)
	sortPaths(b.Paths)
	return b
}

func sortFeeds(fs []Feed) {
	slices.SortFunc(fs, func(a, b Feed) int { return cmp.Or(cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To)) })
}

// Merge adds o into b: counters and breakdowns add up, viewer gauges keep the highest.
func (b *Bucket) Merge(o Bucket) {
	b.Add(o.Counters)
	mergeMap := func(dst *map[string]Counters, src map[string]Counters) {
		for k, c := range src {
			if *dst == nil {
				*dst = map[string]Counters{}
			}
			d := (*dst)[k]
			d.Add(c)
			(*dst)[k] = d
		}
	}
	mergeMap(&b.Renditions, o.Renditions)
	mergeMap(&b.Groups, o.Groups)
	mergeRows(&b.Feeds, o.Feeds, func(f *Feed) ([2]string, *int64) { return [2]string{f.From, f.To}, &f.Bytes }, sortFeeds)
	mergeRows(&b.Paths, o.Paths, func(p *PathBytes) ([2]string, *int64) { return [2]string{p.Path, p.Group}, &p.Bytes }, sortPaths)
	b.ViewersAssisted = max(b.ViewersAssisted, o.ViewersAssisted)
	b.ViewersDirect = max(b.ViewersDirect, o.ViewersDirect)
}

// bucketPlan says which stored buckets a Buckets call reads: the 10 s ones for a 10 s step,
// else the 1 min ones, step a multiple of a minute. It returns the stored width and the
// aligned start of every output step.
func bucketPlan(from, to time.Time, step time.Duration) (stored time.Duration, starts []time.Time, err error) {
	switch {
	case step == BucketStep10:
		stored = BucketStep10
	case step >= BucketStep60 && step%BucketStep60 == 0:
		stored = BucketStep60
	default:
		return 0, nil, badf("step %v: want 10s or a multiple of 1m", step)
	}
	if to.Before(from) {
		return 0, nil, badf("range: to before from")
	}
	first := from.Truncate(step)
	n := int(to.Sub(first)/step) + 1
	if n*int(step/stored) > MaxBuckets {
		return 0, nil, badf("range of %v at step %v: over %d buckets", to.Sub(from), step, MaxBuckets)
	}
	for t := first; !t.After(to); t = t.Add(step) {
		starts = append(starts, t)
	}
	return stored, starts, nil
}

// parseFields converts a Redis hash's string values.
func parseFields(h map[string]string) map[string]int64 {
	out := make(map[string]int64, len(h))
	for k, v := range h {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			out[k] = n
		}
	}
	return out
}

// String is for logs and test failures.
func (f Feed) String() string { return fmt.Sprintf("%s→%s:%d", f.From, f.To, f.Bytes) }

func sortPaths(ps []PathBytes) {
	slices.SortFunc(ps, func(a, b PathBytes) int { return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.Path, b.Path)) })
}

// mergeRows adds src's rows to dst's: a row of the same key adds its bytes, another is
// appended; dst is sorted again. Linear, however many rows a bucket has.
func mergeRows[T any](dst *[]T, src []T, row func(*T) ([2]string, *int64), sort func([]T)) {
	if len(src) == 0 {
		return
	}
	at := make(map[[2]string]int, len(*dst))
	for i := range *dst {
		k, _ := row(&(*dst)[i])
		at[k] = i
	}
	for _, r := range src {
		k, n := row(&r)
		if i, ok := at[k]; ok {
			_, bytes := row(&(*dst)[i])
			*bytes = SatAdd(*bytes, *n)
		} else {
			at[k] = len(*dst)
			*dst = append(*dst, r)
		}
	}
	sort(*dst)
}
