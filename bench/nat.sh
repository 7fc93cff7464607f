#!/usr/bin/env bash
# bench/nat.sh: the NAT test bench (issue 15): three home sites behind NAT routers and a
# gateway on the "internet", in network namespaces on this machine.
#
#   inet ns (the internet, a router): 203.0.113.2 the gateway (rawflow gateway), on tu0
#     ├─ tu0 ── turn ns 203.0.113.3 (coturn when TURN=1)
#     ├─ sA 198.51.100.1/30 ─(WAN_DELAY each way)─ wan0 198.51.100.2  natA ns ─ lan0 192.168.1.1/24 ─ 192.168.1.2 siteA ns
#     ├─ sB 198.51.100.5/30 ─(WAN_DELAY each way)─ wan0 198.51.100.6  natB ns ─ lan0 192.168.2.1/24 ─ 192.168.2.2 siteB ns
#     └─ sC 198.51.100.9/30 ─(WAN_DELAY each way)─ wan0 198.51.100.10 natC ns ─ lan0 192.168.3.1/24 ─ 192.168.3.2 siteC ns
#
# natA, natB: endpoint-independent mapping ("cone"): iptables MASQUERADE, which keeps the
# source port where it is free, so a LAN socket gets one public port whatever it talks to.
# natC: symmetric: MASQUERADE --random-fully, a new public port per destination. All three
# filter: FORWARD into the LAN and INPUT from the WAN accept only packets of flows the site
# opened (conntrack ESTABLISHED,RELATED) and drop the rest, so no viewer is reachable from
# outside its site (the script checks it, with TCP connects from inet and from another site,
# and prints it). inet routes 192.168.X.0/24 to router X, so that such a connect reaches the
# router rather than dying for want of a route.
#
# The gateway runs `rawflow gateway --listen 203.0.113.2:8080 --channel tv=demo` with the
# default neighbour address policy (--peer-addrs public), as on the internet. Each site runs
# `rawflow swarm --gateway http://203.0.113.2:8080 --channel tv --viewers VIEWERS --direct 0
# --peer-host 192.168.X.2`, without --group: the tracker plans a segment's spread within one
# cell (rendition and group), so sites with distinct groups would never be told of each
# other; one group is what lets cross-site peering happen at all.
#
#   bench/nat.sh [DURATION] [VIEWERS]     e.g. bench/nat.sh 60s 4  (VIEWERS per site, 1-10)
#
# Environment: WAN_DELAY (one way, each site link, default 20ms), WAN_RATE (each way, default
# none), DELAY=netem|wire (default netem when the kernel has it; wire: the userspace delay
# line of bench/sites.sh), TURN=1 (coturn in the turn ns, passed to the gateway as
# --ice-server turn:203.0.113.3:3478 --turn-secret, when the gateway has --ice-server),
# TURN_SECRET, PORTMAP (sites whose routers forward ports on request, e.g. PORTMAP=C: the
# router runs miniupnpd, NAT-PMP and UPnP IGD, its public address moves to 11.0.0.X, which
# miniupnpd takes for public, and the site's swarm runs with --port-mapping; the check that
# site A's proxy ports cannot be reached then fails for a mapped A, as it should),
# GATEWAY_FLAGS and SWARM_FLAGS (extra flags, word-split; a flag given again
# wins, e.g. SWARM_FLAGS="--peer-host 0.0.0.0" to advertise the router's public address),
# LOG_LEVEL (the swarms', default error).
#
# Peer bytes that cross sites are counted on the NAT routers (iptables rules without a target
# in a chain NATACCT that FORWARD jumps to first): IP bytes (headers included, TCP and UDP) of
# packets forwarded from the LAN to another site's public address, and of accepted packets
# forwarded into the LAN from another site's public address. Bytes to and from the gateway's
# and the TURN server's addresses are counted the same way. Peer bytes that stay in a site
# are counted in the site ns: IP bytes on lo between 192.168.X.2 and itself (all of a site's
# proxies share that address). The swarm's JSON report gives the segment bytes its proxies
# got from peers and from the gateway (bytes_from_peers, bytes_from_gateway).
#
# It prints the NAT checks, a table per site, the cross-site matrix and any ICE or link
# figures the swarm reports (top-level JSON keys starting with "ice" or "link"), and keeps the
# raw output under bench/results/nat-DATE/.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-60s}
VIEWERS=${2:-4}
WAN_DELAY=${WAN_DELAY:-20ms}
WAN_RATE=${WAN_RATE:-}
TURN=${TURN:-0}
PORTMAP=${PORTMAP:-}
for s in $PORTMAP; do
  case $s in A | B | C) ;; *) echo "bench/nat.sh: PORTMAP=$PORTMAP: want sites among A B C, e.g. PORTMAP=C" >&2; exit 2 ;; esac
done
TURN_SECRET=${TURN_SECRET:-rawflow-nat-bench}
GATEWAY_FLAGS=${GATEWAY_FLAGS:-}
SWARM_FLAGS=${SWARM_FLAGS:-}
LOG_LEVEL=${LOG_LEVEL:-error}

[[ $DUR =~ ^([0-9]+)([sm]?)$ ]] || { echo "bench/nat.sh: DURATION $DUR: want seconds or minutes, e.g. 60s" >&2; exit 2; }
secs=${BASH_REMATCH[1]}
[ "${BASH_REMATCH[2]}" = m ] && secs=$((secs * 60))
DUR=${secs}s
[ "$secs" -ge 20 ] || { echo "bench/nat.sh: DURATION $DUR: want at least 20s" >&2; exit 2; }
if ! [[ $VIEWERS =~ ^[0-9]+$ ]] || [ "$VIEWERS" -lt 1 ] || [ "$VIEWERS" -gt 10 ]; then
  echo "bench/nat.sh: VIEWERS $VIEWERS: want 1-10 per site" >&2
  exit 2
fi
if [ "$(id -u)" != 0 ]; then
  echo "bench/nat.sh: needs root (network namespaces, veth, iptables): run it as root, e.g. sudo bench/nat.sh" >&2
  exit 1
fi

need=""
command -v ip >/dev/null && command -v tc >/dev/null || need="$need iproute2"
command -v iptables >/dev/null || need="$need iptables"
command -v conntrack >/dev/null || need="$need conntrack"
command -v curl >/dev/null || need="$need curl"
command -v jq >/dev/null || need="$need jq"
command -v python3 >/dev/null || need="$need python3"
[ "$TURN" != 1 ] || command -v turnserver >/dev/null || need="$need coturn"
[ -z "$PORTMAP" ] || command -v miniupnpd >/dev/null || need="$need miniupnpd-nftables"
[ -z "$PORTMAP" ] || command -v nft >/dev/null || need="$need nftables"
if [ -n "$need" ]; then
  # shellcheck disable=SC2086 # package names
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
fi
for c in ip tc iptables conntrack curl jq python3; do
  command -v $c >/dev/null || { echo "bench/nat.sh: $c missing (apt-get install iproute2 iptables conntrack curl jq python3)" >&2; exit 1; }
done

out="bench/results/nat-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
work=$(mktemp -d /tmp/rawflow-nat.XXXXXX)
tag=rfn$$
NS_INET=$tag-inet NS_TURN=$tag-turn
GW_IP=203.0.113.2 TURN_IP=203.0.113.3
GW=http://$GW_IP:8080
SITES="A B C"
declare -A IDX=([A]=1 [B]=2 [C]=3) NATKIND=([A]=cone [B]=cone [C]=symmetric)
# A site whose router forwards ports (PORTMAP) has its WAN in 11.0.0.0/8: miniupnpd takes the
# documentation ranges for reserved and maps nothing on them. Routed only inside these
# namespaces.
wan() { case " $PORTMAP " in *" $1 "*) echo 11.0.0 ;; *) echo 198.51.100 ;; esac; }
pub() { echo "$(wan "$1").$((4 * ${IDX[$1]} - 2))"; }  # the router's public address
isp() { echo "$(wan "$1").$((4 * ${IDX[$1]} - 3))"; }  # inet's end of the site link
host() { echo "192.168.${IDX[$1]}.2"; }              # the site's viewers
made_ns=()
cleanup() { # stops this shell's own jobs still running, then deletes the namespaces
  set +e
  local running
  running=$(jobs -p)
  # shellcheck disable=SC2086 # pids
  [ -z "$running" ] || { kill $running 2>/dev/null; wait $running 2>/dev/null; }
  for n in "${made_ns[@]}"; do ip netns del "$n" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

case ${DELAY:=auto} in auto | netem | wire) ;; *) echo "bench/nat.sh: DELAY=$DELAY: want netem or wire" >&2; exit 2 ;; esac

# The WAN delay without netem: bench/wire.py, a userspace delay line between two TUN devices.
cp bench/wire.py "$work/wire.py"

ms() { # 20ms, 0.02s → 20
  case $1 in *ms) echo "${1%ms}" ;; *s) awk -v s="${1%s}" 'BEGIN{print s*1000}' ;; *) echo "$1" ;; esac
}
ipt() { local ns=$1; shift; ip netns exec "$ns" iptables -w "$@"; }

for n in $NS_INET $NS_TURN; do ip netns add "$n"; made_ns+=("$n"); ip -n "$n" link set lo up; done
for s in $SITES; do
  for n in $tag-nat$s $tag-site$s; do ip netns add "$n"; made_ns+=("$n"); ip -n "$n" link set lo up; done
done
if [ "$DELAY" = auto ]; then
  if tc -n $NS_INET qdisc add dev lo root netem delay 1ms 2>/dev/null; then DELAY=netem; else DELAY=wire; fi
  tc -n $NS_INET qdisc del dev lo root 2>/dev/null || true
fi
ip netns exec $NS_INET sysctl -qw net.ipv4.ip_forward=1

# The gateway's address is inet's end of the link to the turn ns.
ip link add name tu0 netns $NS_INET type veth peer name tu0 netns $NS_TURN
ip -n $NS_INET addr add $GW_IP/24 dev tu0
ip -n $NS_TURN addr add $TURN_IP/24 dev tu0
ip -n $NS_INET link set tu0 up
ip -n $NS_TURN link set tu0 up
ip -n $NS_TURN route add default via $GW_IP

shape() { # NS DEV: WAN_RATE (if set) on DEV's egress, and WAN_DELAY with netem
  local parent=root
  if [ -n "$WAN_RATE" ]; then
    tc -n "$1" qdisc add dev "$2" root handle 1: htb default 1
    tc -n "$1" class add dev "$2" parent 1: classid 1:1 htb rate "$WAN_RATE" ceil "$WAN_RATE" quantum 1514
    parent="parent 1:1"
  fi
  if [ "$DELAY" = netem ]; then
    # shellcheck disable=SC2086 # parent is two words or one
    tc -n "$1" qdisc add dev "$2" $parent handle 10: netem delay "$WAN_DELAY" limit 10000
  fi
}
# site S: the WAN link (inet sS ─ router wan0), the LAN (router lan0 ─ site lan0), the NAT.
site() {
  local s=$1 i=${IDX[$1]} nat=$tag-nat$1 lan=$tag-site$1
  if [ "$DELAY" = netem ]; then
    ip link add name "s$s" netns $NS_INET type veth peer name wan0 netns "$nat"
  else
    ip -n $NS_INET tuntap add dev "s$s" mode tun
    ip -n "$nat" tuntap add dev wan0 mode tun
    python3 "$work/wire.py" $NS_INET "s$s" "$nat" wan0 "$(ms "$WAN_DELAY")" >"$work/wire$s.log" 2>&1 &
    for _ in $(seq 50); do grep -q ready "$work/wire$s.log" && break; sleep 0.1; done
    grep -q ready "$work/wire$s.log" || { echo "the delay line of site $s did not start:"; cat "$work/wire$s.log"; exit 1; }
  fi
  ip -n $NS_INET addr add "$(isp "$s")/30" dev "s$s"
  ip -n "$nat" addr add "$(pub "$s")/30" dev wan0
  ip -n $NS_INET link set "s$s" up
  ip -n "$nat" link set wan0 up
  ip -n "$nat" route add default via "$(isp "$s")" dev wan0 onlink
  ip -n $NS_INET route add "192.168.$i.0/24" via "$(pub "$s")" dev "s$s" onlink
  shape $NS_INET "s$s"
  shape "$nat" wan0

  ip link add name lan0 netns "$nat" type veth peer name lan0 netns "$lan"
  ip -n "$nat" addr add "192.168.$i.1/24" dev lan0
  ip -n "$lan" addr add "$(host "$s")/24" dev lan0
  ip -n "$nat" link set lan0 up
  ip -n "$lan" link set lan0 up
  ip -n "$lan" route add default via "192.168.$i.1"
  ip netns exec "$nat" sysctl -qw net.ipv4.ip_forward=1

  local random=()
  [ "${NATKIND[$s]}" = cone ] || random=(--random-fully)
  ipt "$nat" -t nat -A POSTROUTING -o wan0 -j MASQUERADE "${random[@]}"
  ipt "$nat" -N NATACCT
  ipt "$nat" -P FORWARD DROP
  ipt "$nat" -A FORWARD -j NATACCT
  ipt "$nat" -A FORWARD -i lan0 -o wan0 -j ACCEPT
  # Replies to the site's flows, and flows to ports the router forwards (PORTMAP: DNAT).
  ipt "$nat" -A FORWARD -i wan0 -o lan0 -m conntrack --ctstate ESTABLISHED,RELATED,DNAT -j ACCEPT
  ipt "$nat" -A FORWARD -i wan0 -m comment --comment blocked-forward -j DROP
  ipt "$nat" -A INPUT -i wan0 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  ipt "$nat" -A INPUT -i wan0 -m comment --comment blocked-input -j DROP
  # Counters only (no target): what crossed the router, by the far end's public address.
  local o name addr
  for o in $SITES gateway turn; do
    case $o in gateway) addr=$GW_IP name=gateway ;; turn) addr=$TURN_IP name=turn ;; *) [ "$o" != "$s" ] || continue; addr=$(pub "$o") name=site$o ;; esac
    ipt "$nat" -A NATACCT -i lan0 -o wan0 -d "$addr" -m comment --comment "to-$name"
    ipt "$nat" -A NATACCT -i wan0 -o lan0 -s "$addr" -m conntrack --ctstate ESTABLISHED,RELATED -m comment --comment "from-$name"
  done
  ipt "$nat" -A NATACCT -i lan0 -o wan0 -m comment --comment to-all
  ipt "$nat" -A NATACCT -i wan0 -o lan0 -m conntrack --ctstate ESTABLISHED,RELATED -m comment --comment from-all
  # In the site: every proxy has the site's address, so what they send each other stays on lo.
  ipt "$lan" -A OUTPUT -o lo -s "$(host "$s")" -d "$(host "$s")" -m comment --comment in-site
  case " $PORTMAP " in *" $s "*) portmap_router "$s" ;; esac
}
# portmap_router S: miniupnpd on site S's router (NAT-PMP and UPnP IGD on the LAN side,
# forwardings to the LAN only), its rules in an nftables table of its own (bench/miniupnpd).
portmap_router() {
  local s=$1 i=${IDX[$1]} nat=$tag-nat$1
  ip netns exec "$nat" nft -f bench/miniupnpd/table.nft
  sed -e "s|@NATPMP@|yes|" -e "s|@LAN@|192.168.$i.0/24|" bench/miniupnpd/miniupnpd.conf >"$work/miniupnpd$s.conf"
  ip netns exec "$nat" miniupnpd -f "$work/miniupnpd$s.conf" -d -P "$work/miniupnpd$s.pid" >"$out/miniupnpd$s.log" 2>&1 &
}
for s in $SITES; do site "$s"; done

# counter NS CHAIN NAME: the bytes of the rule commented NAME
counter() { ipt "$1" -L "$2" -v -x -n | awk -v n="/* $3 */" 'index($0, n) {print $2; f=1} END {if (!f) print 0}'; }
packets() { ipt "$1" -L "$2" -v -x -n | awk -v n="/* $3 */" 'index($0, n) {print $1; f=1} END {if (!f) print 0}'; }

CGO_ENABLED=0 go build -o "$work/rawflow" ./cmd/rawflow
bin=$work/rawflow
"$bin" gateway -h >"$work/gateway-h.txt" 2>&1 || true

gwflags=()
turn_note="TURN: off (TURN=1 to start coturn)"
if [ "$TURN" = 1 ]; then
  if ! grep -q -- '-ice-server' "$work/gateway-h.txt"; then
    turn_note="TURN: skipped, gateway has no --ice-server"
  elif ! command -v turnserver >/dev/null; then
    turn_note="TURN: skipped, turnserver (coturn) missing"
  else
    ip netns exec $NS_TURN turnserver -n --listening-ip=$TURN_IP --relay-ip=$TURN_IP --listening-port=3478 \
      --min-port=49152 --max-port=65535 --use-auth-secret --static-auth-secret="$TURN_SECRET" --realm=rawflow \
      --fingerprint --no-tls --no-dtls --no-cli --log-file=stdout --simple-log >"$out/turnserver.log" 2>&1 &
    gwflags+=(--ice-server "turn:$TURN_IP:3478" --turn-secret "$TURN_SECRET")
    turn_note="TURN: coturn on $TURN_IP:3478 (use-auth-secret), --ice-server turn:$TURN_IP:3478 --turn-secret …"
  fi
fi
# shellcheck disable=SC2206 # the extra flags are words
gwflags+=($GATEWAY_FLAGS)
ip netns exec $NS_INET "$bin" gateway --listen $GW_IP:8080 --channel tv=demo --log-level warn "${gwflags[@]}" \
  >"$out/gateway.log" 2>&1 &
gw_pid=$!
gwget() { ip netns exec $NS_INET curl -fsS --max-time 5 "$GW$1"; }
for _ in $(seq 200); do
  gwget '/live/tv/index.m3u8?rawflow=peer' 2>/dev/null | grep -q 'SIZE=' && break
  kill -0 $gw_pid 2>/dev/null || break
  sleep 0.1
done
gwget '/live/tv/index.m3u8?rawflow=peer' 2>/dev/null | grep -q 'SIZE=' || { echo "the gateway listed no segment in 20 s:"; cat "$out/gateway.log"; exit 1; }

# The NAT checks. Mapping: one UDP socket in the site sends to two destinations; the router's
# conntrack shows the public port each flow got.
checks=$out/nat-checks.txt
: >"$checks"
for s in $SITES; do
  ip netns exec "$tag-site$s" python3 -c '
import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 40000))
for d in ("'$GW_IP'", "'$TURN_IP'"): s.sendto(b"map", (d, 9))'
  ports=$(ip netns exec "$tag-nat$s" conntrack -L -p udp --orig-port-src 40000 -n 2>/dev/null |
    awk '{for (i = NF; i > 0; i--) if ($i ~ /^dport=/) {sub(/dport=/, "", $i); print $i; break}}' | sort -u | tr '\n' ' ' | sed 's/ $//')
  n=$(wc -w <<<"$ports")
  if [ "$n" = 1 ]; then kind="endpoint-independent (one public port for both destinations: $ports)"; else kind="endpoint-dependent (public ports $ports: one per destination)"; fi
  echo "site $s (${NATKIND[$s]}, public $(pub "$s")): UDP mapping of 192.168.${IDX[$s]}.2:40000 to $GW_IP:9 and $TURN_IP:9: $kind" | tee -a "$checks"
done
# Reachability: a listener on the site's address, connected to from inside the site (must
# work), from inet and from the next site, at the viewer's address and at its router's
# public address (all must fail).
reach() { # NS ADDR PORT: "open" or "blocked" (no connection within 1.5 s)
  if ip netns exec "$1" timeout 1.5 bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null; then echo open; else echo blocked; fi
}
unreachable=1
for s in $SITES; do
  h=$(host "$s")
  ip netns exec "$tag-site$s" python3 -c '
import socket; l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("0.0.0.0", 18080)); l.listen(16); print("ready", flush=True)
while True: l.accept()[0].close()' >"$work/listen$s.log" 2>&1 &
  lpid=$!
  for _ in $(seq 50); do grep -q ready "$work/listen$s.log" && break; sleep 0.1; done
  case $s in A) other=B ;; B) other=C ;; C) other=A ;; esac
  # The four connects from outside at once (each waits up to 1.5 s), then the one from inside.
  probes=()
  for from in inet "site$other"; do
    if [ "$from" = inet ]; then fns=$NS_INET; else fns=$tag-site$other; fi
    for a in "$h" "$(pub "$s")"; do
      reach "$fns" "$a" 18080 >"$work/reach-$s-$from-$a" &
      probes+=($!)
    done
  done
  line="site $s: listener on $h:18080: from the site $(reach "$tag-site$s" "$h" 18080)"
  wait "${probes[@]}"
  for from in inet "site$other"; do
    for a in "$h" "$(pub "$s")"; do
      r=$(cat "$work/reach-$s-$from-$a")
      [ "$r" = blocked ] || unreachable=0
      line="$line; from $from to $a:18080 $r"
    done
  done
  echo "$line" | tee -a "$checks"
  kill $lpid; wait $lpid 2>/dev/null || true
done
if [ $unreachable = 1 ]; then
  echo "no viewer reachable from outside its site: yes" | tee -a "$checks"
else
  echo "no viewer reachable from outside its site: NO (a connect from outside got through)" | tee -a "$checks"
fi
echo "$turn_note" | tee -a "$checks"

# The run: counters zeroed, the three swarms at once.
for s in $SITES; do ipt "$tag-nat$s" -Z; ipt "$tag-site$s" -Z; done
declare -A SPID
for s in $SITES; do
  mapflag=()
  case " $PORTMAP " in *" $s "*) mapflag=(--port-mapping) ;; esac
  # shellcheck disable=SC2086 # SWARM_FLAGS are words
  timeout --kill-after=10 $((secs + 120)) ip netns exec "$tag-site$s" "$bin" swarm --gateway $GW --channel tv \
    --viewers "$VIEWERS" --direct 0 --peer-host "$(host "$s")" --duration "$DUR" --log-level "$LOG_LEVEL" --json "${mapflag[@]}" $SWARM_FLAGS \
    >"$out/site$s.json" 2>"$out/site$s.log" &
  SPID[$s]=$!
done
# While they play: the proxies' own TCP listeners must be out of reach from inet too.
for _ in $(seq 100); do
  ports=$(ip netns exec "$tag-siteA" ss -Hltn "src $(host A)" 2>/dev/null | awk '{n = split($4, a, ":"); print a[n]}' | head -3 | tr '\n' ' ')
  [ -z "$ports" ] || break
  sleep 0.2
done
for p in $ports; do
  r1=$(reach $NS_INET "$(host A)" "$p") r2=$(reach $NS_INET "$(pub A)" "$p")
  [ "$r1" = blocked ] && [ "$r2" = blocked ] || unreachable=0
  echo "site A proxy port $p: from inet to $(host A) $r1, to $(pub A) $r2" | tee -a "$checks"
done
[ -n "$ports" ] || echo "site A: no proxy TCP listener on $(host A) seen (nothing more to check)" | tee -a "$checks"
rc=0
for s in $SITES; do wait "${SPID[$s]}" || rc=$?; done
gwget /api/v1/channels/tv/breakdown >"$out/breakdown.json" || true
gwget /metrics >"$out/metrics.txt" || true
kill $gw_pid; wait $gw_pid 2>/dev/null || true
for s in $SITES; do
  { echo "# nat$s"; ipt "$tag-nat$s" -L -v -x -n; ipt "$tag-nat$s" -t nat -L -v -x -n; echo "# site$s"; ipt "$tag-site$s" -L OUTPUT -v -x -n; } >>"$out/iptables.txt"
done
[ $rc = 0 ] || { echo "a swarm failed (exit $rc): see $out/site*.log"; exit 1; }

mb() { awk -v b="$1" 'BEGIN{printf "%.2f", b/1e6}'; }
{
  printf '%s\t' site NAT viewers offload gw-fetch/seg stalls 'stall s' 'not started' 'join p50/p95 ms' \
    'peer MB (report)' 'in-site MB' 'cross-site in/out MB' 'gateway in/out MB' 'TURN in/out MB' 'blocked in (pkts)'
  echo
  for s in $SITES; do
    nat=$tag-nat$s
    cin=0 cout=0
    for o in $SITES; do
      [ "$o" != "$s" ] || continue
      cin=$((cin + $(counter "$nat" NATACCT "from-site$o"))) cout=$((cout + $(counter "$nat" NATACCT "to-site$o")))
    done
    blocked=$(($(packets "$nat" FORWARD blocked-forward) + $(packets "$nat" INPUT blocked-input)))
    jq -r --arg site "site$s" --arg nat "${NATKIND[$s]}" \
      --arg insite "$(mb "$(counter "$tag-site$s" OUTPUT in-site)")" \
      --arg cross "$(mb $cin)/$(mb $cout)" \
      --arg gw "$(mb "$(counter "$nat" NATACCT from-gateway)")/$(mb "$(counter "$nat" NATACCT to-gateway)")" \
      --arg turn "$(mb "$(counter "$nat" NATACCT from-turn)")/$(mb "$(counter "$nat" NATACCT to-turn)")" \
      --arg blocked "$blocked" '
      def f(x; n): x * pow(10; n) | round / pow(10; n);
      [$site, $nat, .viewers, f(.offload; 3), f(.gateway_fetches_per_segment; 2), .stalls, f(.stall_s; 1), .not_started,
       "\(f(.join_p50_ms; 0))/\(f(.join_p95_ms; 0))", f(.bytes_from_peers / 1e6; 2), $insite, $cross, $gw, $turn, $blocked] | @tsv' \
      "$out/site$s.json"
  done
} | column -t -s $'\t' | tee "$out/table.txt"
{
  echo
  echo "cross-site matrix, MB of IP packets forwarded from the row's site to the column's (counted at the row's router, leaving):"
  printf '%-8s' from/to
  for o in $SITES; do printf '%10s' "site$o"; done
  echo
  for s in $SITES; do
    printf '%-8s' "site$s"
    for o in $SITES; do
      if [ "$o" = "$s" ]; then printf '%10s' -; else printf '%10s' "$(mb "$(counter "$tag-nat$s" NATACCT "to-site$o")")"; fi
    done
    echo
  done
  echo
  for s in $SITES; do
    ice=$(jq -c 'with_entries(select(.key | test("^(ice|link)")))' "$out/site$s.json" 2>/dev/null || echo '{}')
    if [ "$ice" = '{}' ]; then echo "site$s: the swarm report has no ICE or link figures"; else echo "site$s ICE/link: $ice"; fi
  done
  echo
  echo "offload, gw-fetch/seg, stalls, joins, peer MB: the site's swarm report (peer MB = segment bytes its proxies got from peers)"
  echo "in-site MB: IP bytes on the site's lo between its address and itself (its proxies talking to each other; both directions)"
  echo "cross-site, gateway, TURN in/out MB: IP bytes the site's NAT router forwarded into / out of the LAN from / to the other sites' public addresses, the gateway ($GW_IP), the TURN server ($TURN_IP)"
  echo "blocked in: packets from the WAN the router dropped (not replies to flows the site opened; site A's include this script's connects to one of its proxies' ports)"
  echo "WAN links: $WAN_DELAY each way ($DELAY)${WAN_RATE:+, $WAN_RATE each way}; $VIEWERS viewers per site, one group; $DUR"
  # shellcheck disable=SC1091 # the OS's file
  echo "$(date -u) $(nproc) cores, $(uname -sr), $(. /etc/os-release && echo "$PRETTY_NAME"), $(go version | cut -d' ' -f3), rawflow $(git rev-parse --short HEAD)"
} | tee -a "$out/table.txt"
echo "raw output: $out"
[ $unreachable = 1 ] || { echo "bench/nat.sh: a viewer was reachable from outside its site" >&2; exit 1; }
