#!/usr/bin/env bash
# bench/sites.sh: the multi-site benchmark (issue 8), in network namespaces on this machine.
#
#   gateway ns  gw0 10.77.0.2 ──(gateway egress: htb, optional cap)── 10.77.0.1  wan ns (router)
#   wan ns      10.77.1.1 ──(WAN: delay each way + rate each way)── 10.77.1.2  site A ns
#   wan ns      10.77.2.1 ──(WAN: delay each way + rate each way)── 10.77.2.2  site B ns
#
# The gateway runs `rawflow gateway --channel tv=demo` (built-in source, in-memory registry).
# Each site runs one `rawflow swarm --group siteX --peer-host 10.77.X.2`: VIEWERS proxies, each
# played by a simulated viewer; the proxies of a site reach each other on the site's address
# (no link crossed) and the other site's through the router (both WAN links). Nothing leaves
# the namespaces the script creates; it deletes them, and stops what it started, on exit.
#
#   bench/sites.sh [DURATION] [VIEWERS]      e.g. bench/sites.sh 60s 10  (VIEWERS per site, 1-50)
#
# Scenarios (DURATION each; both sites at once):
#   two-sites        VIEWERS assisted viewers per site; the gateway's egress uncapped; they
#                    join over RAMP (default the swarm's: a tenth of DURATION).
#   flash-crowd      the gateway's egress capped at CAP_COPIES × the stream's bitrate; the same
#                    assisted viewers, joining as fast (RAMP).
#   scarce-assisted  the same cap; the assisted viewers join over SCARCE_RAMP (default two
#                    thirds of DURATION): an audience that builds up.
#   scarce-direct    the same cap and SCARCE_RAMP; VIEWERS viewers per site play the gateway
#                    directly (no proxies): the baseline.
# Environment: WAN_DELAY (one way, default 20ms), WAN_RATE (each way, default 20mbit),
# CAP_COPIES (default 5), TELL_CAP (default 1: a capped gateway is told its cap, --egress-limit;
# 0: not), GW_QUEUE (packets queued per site at the gateway's link, default
# 30), SEEDERS (gateway --seeders, default 1), RAMP, SCARCE_RAMP, SCENARIOS (default all four,
# in that order), LOG_LEVEL (the swarms', default error), DELAY=netem|wire (default netem when
# the kernel has it; wire is a userspace delay line between TUN devices, for kernels built
# without sch_netem, such as the one this was first run on).
#
# It prints the stream's bitrate, the cap and a table (per scenario and site: offload, gateway
# fetches per segment, what the gateway's link sent to the site, also in copies of the stream
# played, the WAN link's bytes, stalls, joins, the gateway's response time seen from the site),
# and keeps the raw output under bench/results/sites-DATE/.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-60s}
VIEWERS=${2:-10}
WAN_DELAY=${WAN_DELAY:-20ms}
WAN_RATE=${WAN_RATE:-20mbit}
CAP_COPIES=${CAP_COPIES:-5}
GW_QUEUE=${GW_QUEUE:-30}
SEEDERS=${SEEDERS:-1}
TELL_CAP=${TELL_CAP:-1}
RAMP=${RAMP:-}
SCARCE_RAMP=${SCARCE_RAMP:-}
LOG_LEVEL=${LOG_LEVEL:-error}
SCENARIOS=${SCENARIOS:-two-sites flash-crowd scarce-assisted scarce-direct}
UNCAPPED=1gbit

[[ $DUR =~ ^([0-9]+)([sm]?)$ ]] || { echo "bench/sites.sh: DURATION $DUR: want seconds or minutes, e.g. 60s or 2m" >&2; exit 2; }
secs=${BASH_REMATCH[1]}
[ "${BASH_REMATCH[2]}" = m ] && secs=$((secs * 60))
DUR=${secs}s
[[ $VIEWERS =~ ^[0-9]+$ ]] && [ "$VIEWERS" -ge 1 ] && [ "$VIEWERS" -le 50 ] ||
  { echo "bench/sites.sh: VIEWERS $VIEWERS: want 1-50 per site" >&2; exit 2; }
[ "$secs" -ge 20 ] || { echo "bench/sites.sh: DURATION $DUR: want at least 20s" >&2; exit 2; }
[ -n "$SCARCE_RAMP" ] || SCARCE_RAMP=$((secs * 2 / 3))s
for sc in $SCENARIOS; do
  case $sc in two-sites | flash-crowd | scarce-assisted | scarce-direct) ;;
    *) echo "bench/sites.sh: unknown scenario $sc (two-sites, flash-crowd, scarce-assisted, scarce-direct)" >&2; exit 2 ;;
  esac
done
if [ "$(id -u)" != 0 ]; then
  echo "bench/sites.sh: needs root (network namespaces, veth and tc): run it as root, e.g. sudo bench/sites.sh" >&2
  exit 1
fi

need=""
command -v ip >/dev/null && command -v tc >/dev/null || need="$need iproute2"
command -v curl >/dev/null || need="$need curl"
command -v jq >/dev/null || need="$need jq"
command -v python3 >/dev/null || need="$need python3"
if [ -n "$need" ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
fi
for c in ip tc curl jq python3; do
  command -v $c >/dev/null || { echo "bench/sites.sh: $c missing (apt-get install iproute2 curl jq python3)" >&2; exit 1; }
done

out="bench/results/sites-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
work=$(mktemp -d /tmp/rawflow-sites.XXXXXX)
tag=rfs$$
NS_GW=$tag-gw NS_WAN=$tag-wan NS_A=$tag-siteA NS_B=$tag-siteB
GW_IP=10.77.0.2
GW=http://$GW_IP:8080
made_ns=()
cleanup() { # stops this shell's own jobs still running, then deletes the namespaces
  set +e
  local running
  running=$(jobs -p)
  [ -z "$running" ] || { kill $running 2>/dev/null; wait $running 2>/dev/null; }
  for n in "${made_ns[@]}"; do ip netns del "$n" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

case ${DELAY:=auto} in auto | netem | wire) ;; *) echo "bench/sites.sh: DELAY=$DELAY: want netem or wire" >&2; exit 2 ;; esac

# The WAN delay without netem: bench/wire.py, a userspace delay line between two TUN devices.
cp bench/wire.py "$work/wire.py"

ms() { # 20ms, 0.02s → 20
  case $1 in *ms) echo "${1%ms}" ;; *s) awk -v s="${1%s}" 'BEGIN{print s*1000}' ;; *) echo "$1" ;; esac
}

for n in $NS_GW $NS_WAN $NS_A $NS_B; do
  ip netns add "$n"
  made_ns+=("$n")
  ip -n "$n" link set lo up
done
ip netns exec $NS_WAN sh -c 'echo 1 >/proc/sys/net/ipv4/ip_forward'
# The delay: netem when the kernel has it, else the wire (this was first run on a kernel
# built without sch_netem).
if [ "$DELAY" = auto ]; then
  if tc -n $NS_WAN qdisc add dev lo root netem delay 1ms 2>/dev/null; then DELAY=netem; else DELAY=wire; fi
  tc -n $NS_WAN qdisc del dev lo root 2>/dev/null || true
fi

# The gateway's link: htb with one class per site (its counters split the egress by
# destination) under one parent, the cap; pfifo of GW_QUEUE packets under each.
ip link add name gw0 netns $NS_GW type veth peer name rgw netns $NS_WAN
ip -n $NS_GW addr add $GW_IP/24 dev gw0
ip -n $NS_WAN addr add 10.77.0.1/24 dev rgw
ip -n $NS_GW link set gw0 up
ip -n $NS_WAN link set rgw up
ip -n $NS_GW route add default via 10.77.0.1
tc -n $NS_GW qdisc add dev gw0 root handle 1: htb default 30
tc -n $NS_GW class add dev gw0 parent 1: classid 1:1 htb rate $UNCAPPED ceil $UNCAPPED quantum 1514
for c in 10 20 30; do
  tc -n $NS_GW class add dev gw0 parent 1:1 classid 1:$c htb rate 8kbit ceil $UNCAPPED quantum 1514
  tc -n $NS_GW qdisc add dev gw0 parent 1:$c handle $c: pfifo limit "$GW_QUEUE"
done
tc -n $NS_GW filter add dev gw0 parent 1: protocol ip prio 1 u32 match ip dst 10.77.1.0/24 flowid 1:10
tc -n $NS_GW filter add dev gw0 parent 1: protocol ip prio 1 u32 match ip dst 10.77.2.0/24 flowid 1:20
set_cap() { # RATE: the gateway's egress cap
  tc -n $NS_GW class change dev gw0 parent 1: classid 1:1 htb rate "$1" ceil "$1" quantum 1514
  for c in 10 20 30; do tc -n $NS_GW class change dev gw0 parent 1:1 classid 1:$c htb rate 8kbit ceil "$1" quantum 1514; done
}

shape() { # NS DEV: WAN_RATE on DEV's egress, and WAN_DELAY with netem
  tc -n "$1" qdisc add dev "$2" root handle 1: htb default 1
  tc -n "$1" class add dev "$2" parent 1: classid 1:1 htb rate "$WAN_RATE" ceil "$WAN_RATE" quantum 1514
  if [ "$DELAY" = netem ]; then
    tc -n "$1" qdisc add dev "$2" parent 1:1 handle 10: netem delay "$WAN_DELAY" limit 10000
  fi
}
site_link() { # NS INDEX: the site's WAN link, wan0 in the site, rsINDEX at the router
  local ns=$1 i=$2
  if [ "$DELAY" = netem ]; then
    ip link add name rs$i netns $NS_WAN type veth peer name wan0 netns "$ns"
  else
    ip -n $NS_WAN tuntap add dev rs$i mode tun
    ip -n "$ns" tuntap add dev wan0 mode tun
    python3 "$work/wire.py" $NS_WAN rs$i "$ns" wan0 "$(ms "$WAN_DELAY")" >"$work/wire$i.log" 2>&1 &
    for _ in $(seq 50); do grep -q ready "$work/wire$i.log" && break; sleep 0.1; done
    grep -q ready "$work/wire$i.log" || { echo "the delay line of site $i did not start:"; cat "$work/wire$i.log"; exit 1; }
  fi
  ip -n $NS_WAN addr add 10.77.$i.1/24 dev rs$i
  ip -n "$ns" addr add 10.77.$i.2/24 dev wan0
  ip -n $NS_WAN link set rs$i up
  ip -n "$ns" link set wan0 up
  ip -n "$ns" route add default via 10.77.$i.1 dev wan0 onlink
  shape $NS_WAN rs$i
  shape "$ns" wan0
}
site_link $NS_A 1
site_link $NS_B 2

CGO_ENABLED=0 go build -o "$work/rawflow" ./cmd/rawflow
bin=$work/rawflow

gw_pid=""
start_gateway() { # LOG [FLAG…]
  local log=$1
  shift
  ip netns exec $NS_GW "$bin" gateway --listen $GW_IP:8080 --channel tv=demo --seeders "$SEEDERS" --peer-addrs private \
    --log-level warn "$@" >"$log" 2>&1 &
  gw_pid=$!
  for _ in $(seq 200); do
    ip netns exec $NS_GW curl -fsS "$GW/live/tv/index.m3u8?rawflow=peer" 2>/dev/null | grep -q 'SIZE=' && return 0
    sleep 0.1
  done
  echo "the gateway listed no segment in 20 s:"; cat "$log"; exit 1
}
stop_gateway() { kill "$gw_pid"; wait "$gw_pid" 2>/dev/null || true; }
gwget() { ip netns exec $NS_GW curl -fsS --max-time 5 "$GW$1"; }
# sizes FILE: "segment size" for every segment the gateway lists, appended every 4 s.
watch_sizes() {
  while :; do
    gwget '/live/tv/index.m3u8?rawflow=peer' 2>/dev/null |
      awk '/SIZE=/ {match($0, /SIZE=[0-9]+/); s=substr($0, RSTART+5, RLENGTH-5)} /^[^#]/ && s {print $0, s; s=""}' >>"$1" || true
    sleep 4
  done
}
# counters: "gw0_tx siteA_bytes siteB_bytes rsA_tx rsA_rx rsB_tx rsB_rx" (link bytes)
counters() {
  local cls
  cls=$(tc -n $NS_GW -s class show dev gw0 | awk '/^class htb/ {c=$3} /Sent/ {b[c]=$2} END {printf "%d %d", b["1:10"], b["1:20"]}')
  echo "$(ip netns exec $NS_GW cat /sys/class/net/gw0/statistics/tx_bytes) $cls" \
    "$(ip netns exec $NS_WAN sh -c 'cat /sys/class/net/rs1/statistics/tx_bytes /sys/class/net/rs1/statistics/rx_bytes /sys/class/net/rs2/statistics/tx_bytes /sys/class/net/rs2/statistics/rx_bytes' | tr '\n' ' ')"
}
egress() { gwget /metrics | awk 'index($0, "rawflow_gateway_egress_bytes_total{channel=\"tv\"} ") == 1 {print $2+0; f=1} END {if (!f) print 0}'; }

# The stream's bitrate, from the segments the gateway lists (size and EXTINF).
start_gateway "$out/gateway-probe.log"
sleep 8 # a few more segments
gwget '/live/tv/index.m3u8?rawflow=peer' >"$out/probe.m3u8"
stop_gateway
read -r seg_bytes seg_s <<<"$(awk '/SIZE=/ {match($0, /SIZE=[0-9]+/); b+=substr($0, RSTART+5, RLENGTH-5); n++}
  /^#EXTINF:/ {sub(/^#EXTINF:/, ""); d+=$0+0; k++} END {printf "%.0f %.3f", b/n, d/k}' "$out/probe.m3u8")"
kbit=$(awk -v b="$seg_bytes" -v d="$seg_s" 'BEGIN{printf "%.0f", b*8/d/1000}')
cap_kbit=$((kbit * CAP_COPIES))
demand_kbit=$((kbit * VIEWERS * 2))

{
  echo "stream: segments of $seg_bytes bytes on average every $seg_s s: $kbit kbit/s"
  echo "gateway egress cap in the scarce-uplink scenarios: $CAP_COPIES copies = ${cap_kbit} kbit/s (the audience's demand: $((VIEWERS * 2)) viewers = ${demand_kbit} kbit/s)"
  echo "WAN links: $WAN_DELAY each way ($DELAY), $WAN_RATE each way; $VIEWERS viewers per site; $DUR per scenario; ramp ${RAMP:-default (a tenth of the run)}, scarce-* ramp $SCARCE_RAMP; --seeders $SEEDERS; gateway link queue $GW_QUEUE packets; capped gateway told its cap (--egress-limit): $([ "$TELL_CAP" = 0 ] && echo no || echo yes)"
  [ "$cap_kbit" -lt "$demand_kbit" ] || echo "(the cap is above the audience's demand: the capped scenarios are not scarce; more VIEWERS or a lower CAP_COPIES)"
} | tee "$out/setup.txt"

# probe NS FILE: the gateway's response time (/healthz) seen from NS, every 2 s.
probe() {
  local t
  while :; do
    if t=$(ip netns exec "$1" curl -fsS -o /dev/null -w '%{time_total}' --max-time 10 "$GW/healthz" 2>/dev/null); then
      echo "$t" >>"$2"
    else
      echo timeout >>"$2"
    fi
    sleep 2
  done
}
# scenario NAME CAP MODE RAMP: one run of both sites at once; MODE assisted or direct; RAMP
# empty for the swarm's default.
scenario() {
  local name=$1 cap=$2 mode=$3 ramp=$4 s ns ip pidA pidB
  set_cap "$cap"
  {
    echo "## $name (gateway cap $cap; site links: $WAN_DELAY each way by $DELAY, $WAN_RATE each way)"
    for n in $NS_GW:gw0 $NS_WAN:rs1 $NS_WAN:rs2 $NS_A:wan0 $NS_B:wan0; do
      echo "# $n"; tc -n "${n%%:*}" qdisc show dev "${n#*:}"; tc -n "${n%%:*}" class show dev "${n#*:}"
    done
  } >>"$out/tc.txt"
  # A capped gateway is told its uplink (--egress-limit), as its operator would (TELL_CAP).
  if [ "$cap" = "$UNCAPPED" ] || [ "$TELL_CAP" = 0 ]; then
    start_gateway "$out/$name-gateway.log"
  else
    start_gateway "$out/$name-gateway.log" --egress-limit "$cap"
  fi
  watch_sizes "$work/$name-sizes" &
  local watcher=$!
  probe $NS_A "$out/$name-rtt-siteA.txt" &
  local probeA=$!
  probe $NS_B "$out/$name-rtt-siteB.txt" &
  local probeB=$!
  local before e0
  before=$(counters)
  e0=$(egress)
  for s in A B; do
    if [ $s = A ]; then ns=$NS_A ip=10.77.1.2; else ns=$NS_B ip=10.77.2.2; fi
    if [ "$mode" = assisted ]; then set -- --viewers "$VIEWERS" --direct 0; else set -- --viewers 0 --direct "$VIEWERS"; fi
    [ -z "$ramp" ] || set -- "$@" --ramp "$ramp"
    timeout --kill-after=10 $((secs + 120)) ip netns exec "$ns" "$bin" swarm --gateway $GW --channel tv \
      --group site$s --peer-host $ip "$@" --duration "$DUR" --log-level "$LOG_LEVEL" --json >"$out/$name-site$s.json" 2>"$out/$name-site$s.log" &
    if [ $s = A ]; then pidA=$!; else pidB=$!; fi
  done
  local rc=0
  wait "$pidA" || rc=$?
  wait "$pidB" || rc=$?
  local after e1
  after=$(counters)
  e1=$(egress)
  gwget /api/v1/channels/tv/breakdown >"$out/$name-breakdown.json" || true
  gwget /metrics >"$out/$name-metrics.txt" || true
  tc -n $NS_GW -s qdisc show dev gw0 >"$out/$name-tc-gw0.txt"
  tc -n $NS_GW -s class show dev gw0 >>"$out/$name-tc-gw0.txt"
  kill "$watcher" "$probeA" "$probeB"; wait "$watcher" "$probeA" "$probeB" 2>/dev/null || true
  stop_gateway
  [ $rc = 0 ] || { echo "a swarm of $name failed (exit $rc): see $out/$name-site*.log"; exit 1; }
  sort -u "$work/$name-sizes" >"$out/$name-segment-sizes.txt"
  echo "$name before $before egress $e0" >>"$out/counters.txt"
  echo "$name after  $after egress $e1" >>"$out/counters.txt"
  # Link bytes over the run.
  read -r g0 a0 b0 ta0 ra0 tb0 rb0 <<<"$before"
  read -r g1 a1 b1 ta1 ra1 tb1 rb1 <<<"$after"
  local size
  size=$(awk '{s+=$2; n++} END {printf "%.0f", n ? s/n : 0}' "$out/$name-segment-sizes.txt")
  for s in A B; do
    local j=$out/$name-site$s.json link wan_in wan_out rtt
    rtt=$(sort -n "$out/$name-rtt-site$s.txt" | awk '/timeout/ {t++; next} {v[n++]=$1*1000}
      END {printf "%.0f/%.0f", n ? v[int((n-1)/2)] : 0, n ? v[n-1] : 0; if (t) printf " (%d timeouts)", t}')
    if [ $s = A ]; then link=$((a1 - a0)) wan_in=$((ta1 - ta0)) wan_out=$((ra1 - ra0)); else link=$((b1 - b0)) wan_in=$((tb1 - tb0)) wan_out=$((rb1 - rb0)); fi
    jq -r --arg name "$name" --arg site "site$s" --arg mode "$mode" --argjson link "$link" --argjson size "$size" \
      --argjson wanin "$wan_in" --argjson wanout "$wan_out" --arg rtt "$rtt" '
      def f(x; n): x * pow(10; n) | round / pow(10; n);
      (([.distinct_segments, 1] | max) * ([$size, 1] | max)) as $copy |
      (if $mode == "assisted" then [.viewers, .stalls, .stall_s, .join_p50_ms] else [.direct_viewers, .direct_stalls, .direct_stall_s, .direct_join_p50_ms] end) as [$v, $st, $sts, $join]
      | [$name, $site, "\($v) \($mode)", f(.offload; 3), f(.gateway_fetches_per_segment; 2), .distinct_segments,
         f($link / 1e6; 2), f($link * 8 / 1000 / .duration_s; 0), f($link / $copy; 2),
         (if $mode == "assisted" then f(.bytes_from_gateway / $copy; 2) else "-" end),
         f($wanin / 1e6; 2), f($wanout / 1e6; 2), $st, f($sts; 1), .not_started, f($join; 0), $rtt] | @tsv' "$j" >>"$work/rows.tsv"
  done
  echo "$name: gateway link sent $(awk -v b=$((g1 - g0)) 'BEGIN{printf "%.2f", b/1e6}') MB in all; the gateway's own count of segment bytes served: $(awk -v b="$(awk -v x="$e1" -v y="$e0" 'BEGIN{print x-y}')" 'BEGIN{printf "%.2f", b/1e6}') MB; mean segment $size bytes; cross-site (feeds): $(jq -c '[.feeds[]? | select(.from != .to)]' "$out/$name-breakdown.json" 2>/dev/null || echo '?')" \
    >>"$work/notes.txt"
}

for sc in $SCENARIOS; do
  case $sc in
    two-sites) scenario two-sites "$UNCAPPED" assisted "$RAMP" ;;
    flash-crowd) scenario flash-crowd "${cap_kbit}kbit" assisted "$RAMP" ;;
    scarce-assisted) scenario scarce-assisted "${cap_kbit}kbit" assisted "$SCARCE_RAMP" ;;
    scarce-direct) scenario scarce-direct "${cap_kbit}kbit" direct "$SCARCE_RAMP" ;;
  esac
done

{
  echo
  printf '%s\t' scenario site viewers offload gw-fetch/seg segments 'gw->site MB' 'kbit/s' 'copies(link)' 'copies(segs)' \
    'WAN in MB' 'WAN out MB' stalls 'stall s' 'not started' 'join p50 ms' 'gw rtt p50/max ms'
  echo
  cat "$work/rows.tsv"
} | column -t -s $'\t' | tee "$out/table.txt"
{
  echo
  cat "$work/notes.txt"
  echo "copies(link) = bytes the gateway's link sent to the site / (segments played × mean segment size); copies(segs) = segment bytes the site's proxies got from the gateway / the same"
  echo "WAN in/out = the site's WAN link, bytes into / out of the site (gateway and other site); gw rtt = time of a GET /healthz from the site on a new connection (two round trips), every 2 s"
  echo "$(date -u) $(nproc) cores, $(uname -sr), $(. /etc/os-release && echo "$PRETTY_NAME"), $(go version | cut -d' ' -f3)"
} | tee -a "$out/table.txt"
echo "raw output: $out"
