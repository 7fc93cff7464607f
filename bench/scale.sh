#!/usr/bin/env bash
# bench/scale.sh: the swarm at the sizes of real events (issue 14), on this machine.
#
# Every gateway runs with default flags (only --listen, --channel and --redis are given); all
# viewers come from one address (127.0.0.1), as an office behind one NAT would. The viewers
# are `rawflow swarm --gateway URL` processes: one proxy and one simulated player each, at
# most 500 per process (a viewer holds about 17 file descriptors in its process, and this
# machine caps a process at 20,000); their reports are merged (sums, and the worst join).
#
#   bench/scale.sh [SCENARIO…]     scenarios: one-gateway relay fleet (default: all three)
#
#   one-gateway  VIEWERS (1000) join within RAMP (10s) and play for DURATION (90s) one
#                gateway on the built-in source and a Redis of its own. Measured besides the
#                swarm report: the gateway process's CPU and the Redis commands processed.
#   relay        RELAY_VIEWERS (500) play through an nginx relay in front of the gateway,
#                which logs the bytes of every response: the gateway's egress counted by
#                something other than RawFlow, and compared with the offload the proxies
#                report.
#   fleet        two edge gateways on one Redis, both pulling the channel from a third
#                gateway (the origin, on the built-in source); VIEWERS viewers, half on each
#                edge, form one swarm.
#
# Environment: VIEWERS, RELAY_VIEWERS, DURATION, RAMP, LOG_LEVEL (the swarms', default error),
# SWARM_FLAGS (more flags for every `rawflow swarm`, e.g. --peer-transport direct), PROFILE=1
# (each swarm process writes its CPU profile next to its output: go tool pprof FILE.prof),
# METRICS=1 (each gateway's rawflow_gateway_* metrics every 2 s, in NAME-metrics.txt).
# It prints one line per scenario and keeps the raw output under bench/results/scale-DATE/.
set -euo pipefail
cd "$(dirname "$0")/.."
VIEWERS=${VIEWERS:-1000}
RELAY_VIEWERS=${RELAY_VIEWERS:-500}
DURATION=${DURATION:-90s}
RAMP=${RAMP:-10s}
LOG_LEVEL=${LOG_LEVEL:-error}
SWARM_FLAGS=${SWARM_FLAGS:-}
PROFILE=${PROFILE:-}
METRICS=${METRICS:-}
SCENARIOS=${*:-one-gateway relay fleet}
for sc in $SCENARIOS; do
  case $sc in one-gateway | relay | fleet) ;;
  *) echo "bench/scale.sh: unknown scenario $sc (one-gateway, relay, fleet)" >&2; exit 2 ;;
  esac
done
for c in redis-server redis-cli nginx jq python3; do
  command -v $c >/dev/null || { echo "bench/scale.sh: needs $c (make deps installs it)" >&2; exit 2; }
done
# A viewer holds about 16 sockets (its proxy's and its player's, both ends on this machine).
ulimit -n "$(ulimit -Hn)"

out="$PWD/bench/results/scale-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
work=$(mktemp -d /tmp/rawflow-scale.XXXXXX)
chmod 755 "$work" # nginx's workers run as another user
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
go build -o "$work/rawflow" ./cmd/rawflow
rf="$work/rawflow"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 100); do curl -fs -o /dev/null "$1" && return 0; sleep 0.2; done; echo "bench/scale.sh: $1 never answered" >&2; exit 1; }
# cpu_ticks PID: user+system CPU of a process, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tick=$(getconf CLK_TCK)
redis_cmds() { redis-cli -p "$1" info stats | awk -F: '/^total_commands_processed/{print $2+0}'; }
# redis_cpu PORT: the Redis server's CPU seconds (user + system) so far.
redis_cpu() { redis-cli -p "$1" info cpu | awk -F: '/^used_cpu_(user|sys):/{s += $2} END {printf "%.3f\n", s}'; }

start_redis() { # start_redis NAME: a Redis on a free port, no persistence; sets rp to its port
  # (not printed for $(…): a subshell's pids would not reach cleanup, and every run left
  # its Redis running)
  rp=$(free_port)
  redis-server --port "$rp" --bind 127.0.0.1 --save '' --appendonly no --daemonize no >"$out/$1-redis.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do redis-cli -p "$rp" ping >/dev/null 2>&1 && break; sleep 0.1; done
}
start_gateway() { # start_gateway NAME PORT ARGS…: a gateway process; sets gw_pid
  local name=$1 port=$2; shift 2
  "$rf" gateway --listen "127.0.0.1:$port" --peer-addrs loopback "$@" >"$out/$name.log" 2>&1 &
  gw_pid=$!
  pids+=($gw_pid)
  wait_http "http://127.0.0.1:$port/readyz"
  if [[ -n $METRICS ]]; then # the gateway's own metrics every 2 s, each line prefixed with the time
    (while sleep 2; do
      curl -fs --max-time 2 "http://127.0.0.1:$port/metrics" | grep '^rawflow_gateway' | sed "s/^/$(date +%s.%N | cut -c1-14) /" || true
    done >>"$out/$name-metrics.txt") &
    pids+=($!)
  fi
}
swarm() { # swarm NAME URL VIEWERS: swarm runs against URL, 500 viewers each at most, all at once; merged report in $out/NAME.json
  local n=$3 parts=$(( ($3 + 499) / 500 )) i ps=()
  for i in $(seq "$parts"); do
    local k=$(( n / (parts - i + 1) )) prof=(); n=$((n - k))
    [[ -n $PROFILE ]] && prof=(--cpu-profile "$out/$1-$i.prof")
    "$rf" swarm --gateway "$2" --channel tv --viewers "$k" --direct 1 --duration "$DURATION" --ramp "$RAMP" \
      --log-level "$LOG_LEVEL" --json $SWARM_FLAGS "${prof[@]}" >"$out/$1-$i.json" 2>"$out/$1-$i.log" &
    ps+=($!)
  done
  for i in "${ps[@]}"; do wait "$i"; done
  jq -s '{viewers: (map(.viewers) | add), direct_viewers: (map(.direct_viewers) | add),
      bytes_from_peers: (map(.bytes_from_peers) | add), bytes_from_gateway: (map(.bytes_from_gateway) | add),
      gateway_fetches_per_segment: (map(.gateway_fetches_per_segment) | add),
      stalls: (map(.stalls) | add), player_errors: (map(.player_errors) | add),
      integrity_failures: (map(.integrity_failures) | add), tracker_refused: (map(.tracker_refused) | add),
      join_p50_ms: (map(.join_p50_ms) | max), join_p95_ms: (map(.join_p95_ms) | max),
      tracker_requests_per_viewer_segment: ((map(.tracker_requests_per_viewer_segment * .viewers) | add) / (map(.viewers) | add)),
      connections_per_viewer: ((map(.connections_opened) | add) / (map(.viewers) | add)),
      cpu_cores: (map(.cpu_cores) | add),
      swarm_misses: (map(.swarm_misses // {} | to_entries[]) | reduce .[] as $e ({}; .[$e.key] += $e.value))}
    | .offload = .bytes_from_peers / (.bytes_from_peers + .bytes_from_gateway)' "$out/$1"-*.json >"$out/$1.json"
}
summary() { # summary FILE: the report's headline figures
  jq -r '"offload \(.offload|.*1000|round/1000) | gateway fetches/segment \(.gateway_fetches_per_segment|.*100|round/100) | stalls \(.stalls) | player errors \(.player_errors) | integrity failures \(.integrity_failures) | join p50/p95 \(.join_p50_ms|round)/\(.join_p95_ms|round) ms | tracker req/viewer/segment \(.tracker_requests_per_viewer_segment|.*100|round/100) | refused \(.tracker_refused) | connections/viewer \(.connections_per_viewer|.*10|round/10) | swarm processes \(.cpu_cores|.*100|round/100) cores | swarm misses \(.swarm_misses // {} | to_entries | map("\(.key) \(.value)") | join(", "))"' "$1"
}

for sc in $SCENARIOS; do
  case $sc in
  one-gateway)
    start_redis one-gateway
    gp=$(free_port)
    start_gateway one-gateway-gateway "$gp" --channel tv=demo --redis "redis://127.0.0.1:$rp"
    c0=$(cpu_ticks "$gw_pid"); r0=$(redis_cmds "$rp"); u0=$(redis_cpu "$rp"); t0=$(date +%s.%N)
    swarm one-gateway "http://127.0.0.1:$gp" "$VIEWERS"
    c1=$(cpu_ticks "$gw_pid"); r1=$(redis_cmds "$rp"); u1=$(redis_cpu "$rp"); t1=$(date +%s.%N)
    redis-cli -p "$rp" info commandstats >"$out/one-gateway-redis-commandstats.txt"
    secs=$(echo "$t1 - $t0" | bc -l)
    gw_cores=$(echo "($c1 - $c0) / $tick / $secs" | bc -l)
    redis_rate=$(echo "($r1 - $r0) / $secs" | bc -l)
    redis_cores=$(echo "($u1 - $u0) / $secs" | bc -l)
    printf 'one-gateway, %d viewers, %s: %s\n  gateway process %.2f cores (%.2f per 1,000 viewers); Redis %.0f commands/s, scripts'"'"' inner commands included (%.0f per 1,000 viewers), %.3f cores (%.3f per 1,000 viewers)\n' \
      "$VIEWERS" "$DURATION" "$(summary "$out/one-gateway.json")" "$gw_cores" "$(echo "$gw_cores * 1000 / $VIEWERS" | bc -l)" \
      "$redis_rate" "$(echo "$redis_rate * 1000 / $VIEWERS" | bc -l)" "$redis_cores" "$(echo "$redis_cores * 1000 / $VIEWERS" | bc -l)" | tee -a "$out/summary.txt"
    ;;
  relay)
    gp=$(free_port); np=$(free_port)
    start_gateway relay-gateway "$gp" --channel tv=demo
    cat >"$work/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $out/relay-nginx-error.log;
events { worker_connections 16384; }
http {
  log_format bytes '\$request_uri \$status \$bytes_sent';
  upstream gateway { server 127.0.0.1:$gp; keepalive 256; }
  server {
    listen 127.0.0.1:$np;
    access_log $out/relay-access.log bytes;
    location / {
      proxy_pass http://gateway;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;          # event streams pass at once
      proxy_read_timeout 1h;
    }
  }
}
EOF
    nginx -c "$work/nginx.conf" -p "$work" &
    pids+=($!)
    wait_http "http://127.0.0.1:$np/readyz"
    swarm relay "http://127.0.0.1:$np" "$RELAY_VIEWERS"
    kill -QUIT "$(cat "$work/nginx.pid")" # graceful: open event streams end and are logged
    sleep 2
    # Segment responses (.ts/.m4s/.mp4/.aac) are media; the rest is playlists, events, reports.
    read -r media other < <(awk '{ if ($1 ~ /\.(ts|m4s|mp4|aac)(\?|$)/) m += $3; else o += $3 } END { printf "%d %d\n", m, o }' "$out/relay-access.log")
    peers=$(jq .bytes_from_peers "$out/relay.json")
    # (the proxies' own figure; the direct viewers' segments are in nginx's media bytes too)
    direct_media=$(jq '.bytes_from_gateway' "$out/relay.json")
    printf 'relay, %d viewers, %s: %s\n  nginx: %d media bytes and %d other bytes from the gateway; offload by nginx (peer bytes / (peer bytes + nginx media bytes, direct viewers included)) %.3f; the proxies reported %d bytes from the gateway\n' \
      "$RELAY_VIEWERS" "$DURATION" "$(summary "$out/relay.json")" "$media" "$other" \
      "$(echo "$peers / ($peers + $media)" | bc -l)" "$direct_media" | tee -a "$out/summary.txt"
    ;;
  fleet)
    start_redis fleet
    op=$(free_port); e1=$(free_port); e2=$(free_port)
    start_gateway fleet-origin "$op" --channel tv=demo
    start_gateway fleet-edge1 "$e1" --channel "tv=http://127.0.0.1:$op/live/tv/index.m3u8" --redis "redis://127.0.0.1:$rp"
    p1=$gw_pid
    start_gateway fleet-edge2 "$e2" --channel "tv=http://127.0.0.1:$op/live/tv/index.m3u8" --redis "redis://127.0.0.1:$rp"
    p2=$gw_pid
    c0=$(( $(cpu_ticks "$p1") + $(cpu_ticks "$p2") )); r0=$(redis_cmds "$rp"); t0=$(date +%s.%N)
    half=$((VIEWERS / 2))
    swarm fleet-edge1 "http://127.0.0.1:$e1" "$half" &
    s1=$!
    swarm fleet-edge2 "http://127.0.0.1:$e2" "$((VIEWERS - half))"
    wait "$s1"
    redis-cli -p "$rp" info commandstats >"$out/fleet-redis-commandstats.txt"
    c1=$(( $(cpu_ticks "$p1") + $(cpu_ticks "$p2") )); r1=$(redis_cmds "$rp"); t1=$(date +%s.%N)
    secs=$(echo "$t1 - $t0" | bc -l)
    jq -s '{peers: (map(.bytes_from_peers) | add), gw: (map(.bytes_from_gateway) | add)} | .peers / (.peers + .gw)' \
      "$out/fleet-edge1.json" "$out/fleet-edge2.json" >"$work/offload"
    printf 'fleet, %d viewers on two edges, %s: offload %.3f over both\n  edge 1: %s\n  edge 2: %s\n  both edges %.2f cores; Redis %.0f commands/s\n' \
      "$VIEWERS" "$DURATION" "$(cat "$work/offload")" "$(summary "$out/fleet-edge1.json")" "$(summary "$out/fleet-edge2.json")" \
      "$(echo "($c1 - $c0) / $tick / $secs" | bc -l)" "$(echo "($r1 - $r0) / $secs" | bc -l)" | tee -a "$out/summary.txt"
    ;;
  esac
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
done
echo "raw output: $out"
