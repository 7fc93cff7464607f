#!/usr/bin/env bash
# bench/players.sh: real players against a demo proxy (issue acceptance item "Players").
#
# GStreamer (playbin3) and VLC (cvlc) each play a live HLS URL for PLAY_SECONDS (30) of
# wall-clock time, headless and in real time (GStreamer: fakesinks with sync=true; VLC: its
# dummy video and audio outputs, which still decode and schedule every picture and sample).
# Without a URL the script builds rawflow, starts `rawflow demo --viewers 0` on free ports
# of 127.0.0.1 and plays its first peer-assist proxy; the demo is stopped at exit.
#
#   bench/players.sh                 the demo's proxy
#   bench/players.sh URL             any HLS URL instead (e.g. a broken stream, to see a FAIL)
#   PLAY_SECONDS=60 bench/players.sh
#
# What passes:
#   GStreamer  the video sink's buffer PTS (fakesink last-message lines) strictly increase over
#              the whole run, span at least MIN_SPAN (28) seconds, never jump by more than
#              MAX_GAP (0.5) s; no buffer after the first carries the DISCONT flag, the sink
#              gets a single segment event, and there is no ERROR/WARNING bus message and no
#              ERROR line in the GST_DEBUG=2 log.
#   VLC        the adaptive demuxer's periodic "cached.i_time (T) cur C" lines (T: play time
#              in the playlist, C: the stream's own timestamps, both in microseconds) strictly
#              increase, T spans at least MIN_SPAN seconds, C - T stays within MAX_GAP (the
#              stream's clock runs with the playlist's); and the log has none of VLC's clock
#              or timestamp trouble messages (below), nor an error line other than the ones
#              a headless run always has (dbus, hotkeys). Late pictures are counted; one late
#              by MAX_GAP or more fails.
# It prints one summary line per player and exits non-zero if either fails. Logs are kept
# in a mktemp directory, printed at the end.
#
# Packages (Debian 12), installed when missing: gstreamer1.0-tools, -plugins-base (playbin3),
# -plugins-good (hlsdemux2, souphttpsrc, aacparse), -plugins-bad (tsdemux, h264parse),
# gstreamer1.0-libav (avdec_h264, avdec_aac); vlc-bin (cvlc) and vlc-plugin-base (HLS, TS,
# avcodec, faad, dummy outputs). VLC refuses to run as root, so as root it runs as nobody.
set -euo pipefail
cd "$(dirname "$0")/.."
URL=${1:-}
DUR=${PLAY_SECONDS:-30}
MIN_SPAN=${MIN_SPAN:-28}
MAX_GAP=${MAX_GAP:-0.5}
WALL=$((DUR + 3)) # startup (playlist, first segments, preroll) takes a second or two

# VLC's messages (libvlccore, ts demux, avcodec 3.0) that mean the clock or the timestamps
# went wrong: a clock reset or jump, a continuity counter break, samples or frames too late.
VLC_TROUBLE='clock gap|new reference point|Timestamp conversion failed|Could not (get display date|convert timestamp)|ES_OUT_RESET_PCR|Invalid PCR|ES_OUT_SET_\(GROUP_\)PCR +is called too late|buffer too late|playback (way )?too late|timing screwed|discontinuity (received|indicator)|TS discontinuity|Broken stream|late frames, dropping'
VLC_BENIGN='dbus|no suitable interface module|interface "[a-z]+,none" initialization failed'

need=""
command -v gst-launch-1.0 >/dev/null || need="$need gstreamer1.0-tools"
if command -v gst-inspect-1.0 >/dev/null; then
  gst-inspect-1.0 playbin3 >/dev/null 2>&1 || need="$need gstreamer1.0-plugins-base"
  gst-inspect-1.0 hlsdemux2 >/dev/null 2>&1 || need="$need gstreamer1.0-plugins-good"
  gst-inspect-1.0 tsdemux >/dev/null 2>&1 || need="$need gstreamer1.0-plugins-bad"
  gst-inspect-1.0 avdec_h264 >/dev/null 2>&1 || need="$need gstreamer1.0-libav"
else
  need="$need gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav"
fi
command -v cvlc >/dev/null || need="$need vlc-bin vlc-plugin-base"
[ -n "$(find /usr/lib -path '*/vlc/plugins/codec/libavcodec_plugin.so' -print -quit 2>/dev/null)" ] ||
  need="$need vlc-plugin-base"
if [ -n "$need" ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "installing:$need"
  # shellcheck disable=SC2086 # $need is a list of package names
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need >/dev/null
fi

logs=$(mktemp -d /tmp/rawflow-players.XXXXXX)
chmod 755 "$logs"
demo_pid=""
# shellcheck disable=SC2317 # run by the trap
cleanup() { if [ -n "$demo_pid" ]; then kill "$demo_pid" 2>/dev/null || true; wait "$demo_pid" 2>/dev/null || true; fi; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

if [ -z "$URL" ]; then
  go build -o "$logs/rawflow" ./cmd/rawflow
  gw=$(free_port); px=$(free_port)
  "$logs/rawflow" demo --viewers 0 --listen "127.0.0.1:$gw" --proxy-port "$px" --duration 10m >"$logs/demo.log" 2>&1 &
  demo_pid=$!
  # The demo prints its proxies' URLs (a taken port falls back to a free one): play proxy 1.
  for _ in $(seq 100); do
    URL=$(awk '$1 == "proxy" && $2 == "1" {print $3; exit}' "$logs/demo.log")
    [ -n "$URL" ] && break
    kill -0 "$demo_pid" 2>/dev/null || { cat "$logs/demo.log"; echo "demo exited"; exit 1; }
    sleep 0.1
  done
  [ -n "$URL" ] || { cat "$logs/demo.log"; echo "no proxy URL in the demo's output"; exit 1; }
  for _ in $(seq 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL")" = 200 ] && break
    sleep 0.1
  done
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL")" = 200 ] || { echo "$URL does not answer 200"; exit 1; }
fi
echo "playing $URL for ${DUR}s with each player"
fail=0

# --- GStreamer ---------------------------------------------------------------------------
t0=$(date +%s.%N)
GST_DEBUG=2 GST_DEBUG_NO_COLOR=1 timeout -s INT -k 5 "$WALL" gst-launch-1.0 -v playbin3 uri="$URL" \
  video-sink="fakesink name=vsink sync=true silent=false" audio-sink="fakesink name=asink sync=true" \
  >"$logs/gst.log" 2>"$logs/gst-debug.log" || true
t1=$(date +%s.%N)
# Buffer lines: "... (vsink:sink) (86400 bytes, dts: none, pts: 0:01:04.080000000, ... flags: 00000040 discont , ...".
awk -v min="$MIN_SPAN" -v maxgap="$MAX_GAP" -v wall="$(echo "$t0 $t1" | awk '{printf "%.1f", $2 - $1}')" \
    -v dbgerr="$(grep -c ' ERROR ' "$logs/gst-debug.log" || true)" '
  /last-message = chain .*\(vsink:sink\)/ {
    n++
    if (match($0, /pts: [0-9]+:[0-9]+:[0-9.]+/)) {
      split(substr($0, RSTART + 5, RLENGTH - 5), h, ":"); t = h[1] * 3600 + h[2] * 60 + h[3]
      if (n == 1) first = t; else { g = t - last; if (g > maxgap_seen) maxgap_seen = g; if (g <= 0) back++ }
      last = t
    } else nopts++
    if (n > 1 && match($0, /flags: [^,]*/) && substr($0, RSTART, RLENGTH) ~ / discont( |$)/) discont++
  }
  /last-message = event .*\(vsink:sink\) E \(type: segment/ { segments++ }
  !/last-message/ && /(ERROR|WARNING): / { errors++ }
  { stalls += gsub(/Buffering, setting pipeline to PAUSED/, "") }
  END {
    span = n ? last - first : 0
    ok = n > 0 && !back && !nopts && span >= min && maxgap_seen <= maxgap && !discont && segments <= 1 && !errors && !dbgerr
    printf "gstreamer: %s buffers=%d pts=%.3f..%.3fs span=%.2fs wall=%ss max_gap=%.3fs non_increasing=%d no_pts=%d discont=%d segments=%d errors=%d debug_errors=%d stalls=%d\n",
      ok ? "PASS" : "FAIL", n, first, last, span, wall, maxgap_seen, back, nopts, discont, segments, errors, dbgerr, stalls
    exit !ok
  }' "$logs/gst.log" | tee "$logs/gst-summary.txt" || fail=1
grep -oE '(ERROR|WARNING): .*' "$logs/gst.log" | grep -v last-message | head -3 | sed 's/^/  /' || true
if grep -q 'int_from_string: Numerical result out of range' "$logs/gst-debug.log"; then
  echo "  note: GStreamer's HLS parser could not read a playlist number (it reads EXT-X-MEDIA-SEQUENCE and"
  echo "  EXT-X-DISCONTINUITY-SEQUENCE as 32-bit ints, so anything above 2147483647 is dropped: see $logs/gst-debug.log)"
fi

# --- VLC ---------------------------------------------------------------------------------
vlc=(cvlc)
if [ "$(id -u)" = 0 ]; then # "VLC is not supposed to be run as root"
  mkdir -p "$logs/vlc-home" && chown nobody "$logs/vlc-home"
  vlc=(setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME="$logs/vlc-home" cvlc)
fi
timeout -s INT -k 5 "$WALL" "${vlc[@]}" --intf dummy --vout dummy --aout dummy --play-and-exit \
  --no-color -vv "$URL" >"$logs/vlc.log" 2>&1 || true
grep -E "$VLC_TROUBLE" "$logs/vlc.log" >"$logs/vlc-trouble.txt" || true
sed -E 's/^\[[0-9a-f]+\] //' "$logs/vlc.log" | grep -E '^[a-z0-9_ ]+ (error|warning): ' | grep -vE "$VLC_BENIGN" |
  grep -E ' error: ' >"$logs/vlc-errors.txt" || true
# "adaptive demux debug: cached.i_time (5680001) cur 781080001 rap start ..."
awk -v min="$MIN_SPAN" -v maxgap="$MAX_GAP" \
    -v trouble="$(wc -l <"$logs/vlc-trouble.txt")" -v errors="$(wc -l <"$logs/vlc-errors.txt")" '
  /cached\.i_time \([0-9]+\) cur [0-9]+/ {
    match($0, /cached\.i_time \([0-9]+\) cur [0-9]+/); split(substr($0, RSTART, RLENGTH), f, /[() ]+/)
    t = f[2] / 1e6; c = f[4] / 1e6
    if (t <= 0 || c <= 0) next # before playback starts
    n++
    if (n == 1) { t0 = t; c0 = c; dmin = dmax = c - t } else {
      if (t <= lt || c <= lc) back++
      if (t - lt > step) step = t - lt
      if (c - t < dmin) dmin = c - t; if (c - t > dmax) dmax = c - t
    }
    lt = t; lc = c
  }
  /picture is too late to be displayed \(missing [0-9]+ ms\)/ {
    late++; match($0, /missing [0-9]+ ms/); ms = substr($0, RSTART + 8, RLENGTH - 11) + 0; if (ms > worst) worst = ms
  }
  /main input debug: EOF reached/ { eof++ }
  END {
    span = n ? lt - t0 : 0; drift = n ? dmax - dmin : 0
    ok = n > 0 && !back && span >= min && drift <= maxgap && !trouble && !errors && worst < maxgap * 1000
    printf "vlc: %s samples=%d demux_time=%.2f..%.2fs span=%.2fs stream_ts=%.2f..%.2fs ts_drift=%.3fs max_step=%.2fs non_increasing=%d clock_msgs=%d errors=%d late_pictures=%d worst_late=%dms eof=%d\n",
      ok ? "PASS" : "FAIL", n, t0, lt, span, c0, lc, drift, step, back, trouble, errors, late, worst, eof
    exit !ok
  }' "$logs/vlc.log" | tee "$logs/vlc-summary.txt" || fail=1
if [ -s "$logs/vlc-trouble.txt" ]; then
  sed -E 's/^\[[0-9a-f]+\] //; s/-?[0-9]+/N/g' "$logs/vlc-trouble.txt" | sort | uniq -c | sort -rn | head -8 | sed 's/^/  /'
fi
head -3 "$logs/vlc-errors.txt" | sed 's/^/  /'

echo "logs: $logs"
exit "$fail"
