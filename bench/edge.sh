#!/usr/bin/env bash
# bench/edge.sh: the gateway against nginx, side by side on this machine (issue 9).
#
# nginx (Debian's nginx-light, sendfile, keep-alive) serves a 1 MB segment, a 200 KB segment
# and a live playlist from tmpfs; the same nginx is the gateway's origin, so the gateway
# serves the very same bytes from its RAM window. wrk drives both with the same threads,
# connections and duration, one after the other. Everything listens on 127.0.0.1.
#
#   bench/edge.sh [DURATION] [CONNECTIONS]     e.g. bench/edge.sh 10s 64
#
# It prints a table (requests/s, MB/s, latency p50/p99, ratio gateway/nginx) and keeps the
# raw wrk output under bench/results/edge-DATE/.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10s}
CONNS=${2:-64}
THREADS=2

need=""
command -v nginx >/dev/null || need="$need nginx-light"
command -v wrk >/dev/null || need="$need wrk"
if [ -n "$need" ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need >/dev/null
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

out="bench/results/edge-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
work=$(mktemp -d /dev/shm/rawflow-edge.XXXXXX)
chmod 755 "$work" # nginx's workers run as another user
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# The origin's files: two segments of random bytes and a live playlist naming them.
head -c 1000000 /dev/urandom >"$work/big.ts"
head -c 200000 /dev/urandom >"$work/small.ts"
printf '#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:2.000,\nbig.ts\n#EXTINF:2.000,\nsmall.ts\n' >"$work/live.m3u8"

NGINX_PORT=$(free_port)
cat >"$work/nginx.conf" <<EOF
worker_processes auto;
pid $work/nginx.pid;
error_log $work/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_requests 100000; keepalive_timeout 60s;
  types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $work;
    location / { add_header Cache-Control "public, max-age=1"; }
  }
}
EOF
nginx -c "$work/nginx.conf" -g 'daemon off;' &
pids+=($!)

GW_PORT=$(free_port)
CGO_ENABLED=0 go build -o "$work/rawflow" ./cmd/rawflow
"$work/rawflow" gateway --listen "127.0.0.1:$GW_PORT" --channel "bench=http://127.0.0.1:$NGINX_PORT/live.m3u8" --peer-addrs loopback \
  --log-level warn >"$out/gateway.log" 2>&1 &
gw_pid=$!
pids+=($gw_pid)

gw="http://127.0.0.1:$GW_PORT"
for _ in $(seq 100); do
  curl -fsS "$gw/live/bench/index.m3u8" >"$work/gw.m3u8" 2>/dev/null && grep -q '\.ts' "$work/gw.m3u8" && break
  sleep 0.1
done
big=$(grep -m1 '\.ts$' "$work/gw.m3u8" || true)
small=$(grep '\.ts$' "$work/gw.m3u8" | sed -n 2p || true)
[ -n "$big" ] && [ -n "$small" ] || { echo "the gateway listed no segments"; cat "$out/gateway.log"; exit 1; }
cmp <(curl -fsS "$gw/live/bench/$big") "$work/big.ts"   # same bytes on both sides
cmp <(curl -fsS "$gw/live/bench/$small") "$work/small.ts"

run() { # name url → one wrk run, raw output kept
  wrk -t$THREADS -c"$CONNS" -d"$DUR" --latency "$2" >"$out/$1.txt"
}
# parse file → "req/s MB/s p50 p99"
parse() {
  awk '
    /Requests\/sec/ {rps=$2}
    /Transfer\/sec/ {t=$2; if (t ~ /GB/) {sub(/GB/,"",t); t*=1024} else if (t ~ /MB/) {sub(/MB/,"",t)} else if (t ~ /KB/) {sub(/KB/,"",t); t/=1024}; mbs=t}
    /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
    END {printf "%s %s %s %s", rps, mbs, p50, p99}' "$1"
}

printf '%-12s %-8s %12s %10s %10s %10s\n' case server 'req/s' 'MB/s' p50 p99 | tee "$out/table.txt"
for c in "segment-1MB:$big:big.ts" "segment-200KB:$small:small.ts" "playlist:index.m3u8:live.m3u8"; do
  IFS=: read -r name gwpath ngpath <<<"$c"
  run "$name-nginx" "http://127.0.0.1:$NGINX_PORT/$ngpath"
  run "$name-gateway" "$gw/live/bench/$gwpath"
  read -r nr nm n50 n99 <<<"$(parse "$out/$name-nginx.txt")"
  read -r gr gm g50 g99 <<<"$(parse "$out/$name-gateway.txt")"
  printf '%-12s %-8s %12s %10s %10s %10s\n' "$name" nginx "$nr" "$nm" "$n50" "$n99" | tee -a "$out/table.txt"
  printf '%-12s %-8s %12s %10s %10s %10s   ratio %.2f\n' "$name" gateway "$gr" "$gm" "$g50" "$g99" \
    "$(awk -v g="$gr" -v n="$nr" 'BEGIN{print g/n}')" | tee -a "$out/table.txt"
done
# Proxy overhead: one connection, a segment the proxy holds, through the proxy and direct.
P_PORT=$(free_port)
"$work/rawflow" peer --gateway "$gw" --listen "127.0.0.1:$P_PORT" --peer-listen 127.0.0.1:0 --log-level warn >"$out/peer.log" 2>&1 &
pids+=($!)
proxy="http://127.0.0.1:$P_PORT"
for _ in $(seq 100); do curl -fsS "$proxy/live/bench/index.m3u8" >/dev/null 2>&1 && break; sleep 0.1; done
seg=""
for cand in "$small" "$big"; do
  if curl -fsS "$proxy/live/bench/$cand" -o /dev/null 2>/dev/null; then seg=$cand; break; fi
done
if [ -n "$seg" ]; then
  wrk -t1 -c1 -d"$DUR" --latency "$gw/live/bench/$seg" >"$out/overhead-direct.txt"
  wrk -t1 -c1 -d"$DUR" --latency "$proxy/live/bench/$seg" >"$out/overhead-proxy.txt"
  read -r _ _ d50 d99 <<<"$(parse "$out/overhead-direct.txt")"
  read -r _ _ p50 p99 <<<"$(parse "$out/overhead-proxy.txt")"
  printf '\nproxy overhead (%s, 1 connection): direct p50 %s p99 %s; through the proxy p50 %s p99 %s\n' \
    "$seg" "$d50" "$d99" "$p50" "$p99" | tee -a "$out/table.txt"
else
  echo "proxy overhead: the proxy served neither segment" | tee -a "$out/table.txt"
fi

# Memory: the gateway's RSS against the bytes its window holds.
rss_kb=$(ps -o rss= -p "$gw_pid" | tr -d ' ')
win=$(curl -fsS "$gw/metrics" | awk '/^rawflow_gateway_window_bytes/ {s+=$2} END {print s+0}')
printf 'gateway RSS %d KiB with %d window bytes (%.1f MiB) after the run\n' "$rss_kb" "$win" "$(awk -v w="$win" 'BEGIN{print w/1048576}')" \
  | tee -a "$out/table.txt"
{ echo; echo "$(date -u) $(nproc) cores, $(uname -sr), wrk -t$THREADS -c$CONNS -d$DUR; nginx $(nginx -v 2>&1 | cut -d/ -f2)"; } | tee -a "$out/table.txt"
