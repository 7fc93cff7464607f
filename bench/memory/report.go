package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// printReport writes the human-readable tables.
func printReport(w io.Writer, r *Report) {
	s := r.Settings
	fmt.Fprintf(w, "RawFlow memory and tracker bench (issue 9), %s\n", r.Date)
	fmt.Fprintf(w, "%d CPUs (nproc), %s, %s; wall %.0f s\n", r.NProc, r.Kernel, r.GoVersion, r.WallSeconds)
	fmt.Fprintf(w, "command: %s\n", strings.Join(r.Command, " "))
	fmt.Fprintf(w, "children: %s; env %s; logs in %s\n", r.Binary, envNote(s), r.LogDir)
	dirty := ""
	if n := len(r.Git.Modified); n > 0 {
		dirty = fmt.Sprintf(" + %d modified file(s) in the working tree (listed in the JSON)", n)
	}
	fmt.Fprintf(w, "built from: %s%s\n", orQ(r.Git.Commit), dirty)
	fmt.Fprintf(w, "open files: bench %s, gateway %s\n", r.NoFile.Bench, orQ(r.NoFile.Gateway))

	if r.Baseline != nil || len(r.Gateway) > 0 {
		fmt.Fprintf(w, "\n1. Gateway RSS per channel: %d-byte segments every %s, --window %d; baseline: 1 channel of %d-byte segments\n",
			s.SegmentBytes, s.SegmentInterval, s.Window, s.BaselineBytes)
		fmt.Fprintf(w, "   RSS = largest of %d readings of VmRSS, %.0f s apart, once the windows are full; window = sum of rawflow_gateway_window_bytes (listed + retired)\n",
			s.RSSSamples, s.RSSSampleEverySecs)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "channels\twindow\tsegs held\tRSS\tRSS mean\tanon\tfile\tlive heap\theap goal\t(RSS-base)/K\twindow/K\tbar 1.5×win/K+50MiB\tbar\t")
		if b := r.Baseline; b != nil {
			fmt.Fprintf(tw, "base\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t\t\t\t\t\n", mib(b.Window.Bytes), b.Window.Segments, mib(b.RSS.VMRSSMax),
				mib(b.RSS.VMRSSMean), mib(b.RSS.RssAnonMean), mib(b.RSS.RssFileMean), heap(b.GC.HeapLive, b.GC), heap(b.GC.HeapGoal, b.GC))
		}
		for _, g := range r.Gateway {
			verdict := "FAIL"
			if g.Pass != nil && *g.Pass {
				verdict = "pass"
			}
			if !g.Window.Stable {
				verdict += " (window not stable)"
			}
			fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", g.Channels, mib(g.Window.Bytes), g.Window.Segments,
				mib(g.RSS.VMRSSMax), mib(g.RSS.VMRSSMean), mib(g.RSS.RssAnonMean), mib(g.RSS.RssFileMean), heap(g.GC.HeapLive, g.GC),
				heap(g.GC.HeapGoal, g.GC), mib(g.PerChannelRSS), mib(g.PerChannelWindow), mib(g.PerChannelBar), verdict)
		}
		tw.Flush()
	}

	if sl := r.Slow; sl != nil {
		fmt.Fprintf(w, "\n2. Gateway RSS with %d slow players: 1 channel, each player its own connection (SO_RCVBUF %d), GET %s (%d bytes), reading %d B/s, held %.1f s\n",
			sl.Players, sl.RcvBuf, orQ(sl.Segment), sl.SegmentBytes, sl.RateBytesPerSec, sl.HoldSeconds)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "connected\tgot 200\tRSS before\tpeak during\tafter\tper connection\tkernel send queues\tkernel TCP mem\tgateway CPU\thealthz after\t")
		health := "200"
		if !sl.HealthyAfter {
			health = "FAIL: " + sl.HealthError
		}
		fmt.Fprintf(tw, "%d/%d\t%d\t%s\t%s\t%s\t%.1f KiB\t%s in %d sockets\t%s → %s\t%.1f s\t%s\t\n", sl.Connected, sl.Players, sl.Got200,
			mib(sl.Before.VMRSSMax), mib(sl.During.VMRSSMax), mib(sl.After.VMRSSMean), sl.PerConnection/1024,
			mib(sl.SendQueueBytes), sl.SendQueueSockets, mib(sl.TCPMemBefore), mib(sl.TCPMemPeak), sl.GatewayCPU, health)
		tw.Flush()
		fmt.Fprintf(w, "   set-up %.1f s; dial errors %d, read errors %d%s; bytes read %s; VmHWM after %s\n", sl.DialSeconds, sl.DialErrors,
			sl.ReadErrors, firstErr(sl.FirstDialError, sl.FirstReadError), mib(sl.BytesRead), mib(sl.After.VMHWM))
	}

	if len(r.Proxy) > 0 {
		fmt.Fprintf(w, "\n3. Proxy RSS against cache size: 1 channel of %d-byte segments every %s, played through the proxy until it fetched 1.5 × its cache\n",
			s.SegmentBytes, s.ProxyInterval)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "--cache-size\tfetched\tcache held\tsegs\tRSS idle\tRSS\tRSS mean\tlive heap\theap goal\tRSS/cache\tRSS/held\t")
		var notes []string
		for _, p := range r.Proxy {
			if p.Refused != "" || p.Error != "" {
				fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t\n", p.CacheSize)
				notes = append(notes, fmt.Sprintf("   --cache-size %s: %s", p.CacheSize, oneLine(p.Refused+p.Error)))
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%.2f\t%.2f\t\n", p.CacheSize, mib(p.FetchedFromGateway), mib(p.CacheHeld),
				p.CacheSegments, mib(p.IdleRSS.VMRSSMax), mib(p.RSS.VMRSSMax), mib(p.RSS.VMRSSMean), heap(p.GC.HeapLive, p.GC),
				heap(p.GC.HeapGoal, p.GC), p.RatioRSSCache, p.RatioRSSHeld)
		}
		tw.Flush()
		for _, n := range notes {
			fmt.Fprintln(w, n)
		}
	}

	if t := r.Tracker; t != nil {
		fmt.Fprintf(w, "\n4. Tracker throughput: Redis %s, %d concurrent clients, %s each; gateway --tracker-rate %s; gateway's Redis pool: %s\n",
			orQ(t.RedisVersion), t.Clients, t.Duration, t.TrackerRate, t.GatewayPool)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "call\tops/s\t× PING\tp50 ms\tp99 ms\terrors\tgateway cores\tredis cores\tbench cores\thost busy\tsteal\t")
		for _, res := range t.Results {
			fmt.Fprintf(tw, "%s\t%.0f\t%.2f\t%.2f\t%.2f\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", res.Name, res.OpsPerSec, res.VsPing, res.P50Ms, res.P99Ms,
				res.Errors, res.GatewayCores, res.RedisCores, res.BenchCores, res.HostBusy, res.HostSteal)
		}
		tw.Flush()
	}
	if len(r.Errors) > 0 {
		fmt.Fprintln(w, "\nerrors:")
		for _, e := range r.Errors {
			fmt.Fprintln(w, "  "+oneLine(e))
		}
	}
}

func envNote(s settings) string {
	var parts []string
	if s.ChildGODEBUG != "" {
		parts = append(parts, "GODEBUG="+s.ChildGODEBUG)
	}
	if s.ChildGOGC != "" {
		parts = append(parts, "GOGC="+s.ChildGOGC)
	}
	if len(parts) == 0 {
		return "default"
	}
	return strings.Join(parts, " ")
}

func heap(v int, g gcTrace) string {
	if g.Cycles == 0 {
		return "-"
	}
	return fmt.Sprintf("%d MiB", v)
}

func orQ(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

func firstErr(dial, read string) string {
	var parts []string
	if dial != "" {
		parts = append(parts, "first dial error: "+dial)
	}
	if read != "" {
		parts = append(parts, "first read error: "+read)
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
