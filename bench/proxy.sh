#!/usr/bin/env bash
# Measures what Cairn's proxy mode adds to a request: a 3-member cluster
# and a proxy in front of it on loopback; `cairn bench` runs each workload
# once straight at the member the proxy forwards to and once through the
# proxy, and the proxy's CPU time (utime+stime from /proc/PID/stat) is
# sampled around each proxied run.
#
# Usage: bash bench/proxy.sh   (from anywhere; builds cairn from the repo)
#
# Environment:
#   DURATION   length of each run (default 10s)
#   CLIENTS    concurrent clients (default 8)
#   WORKLOADS  cairn bench workloads (default "get-serializable put")
#   BASE_PORT  first loopback port (default 25000)
#
# Every process it starts is stopped by PID when it exits.
set -euo pipefail

DURATION=${DURATION:-10s}
CLIENTS=${CLIENTS:-8}
WORKLOADS=${WORKLOADS:-get-serializable put}
BASE_PORT=${BASE_PORT:-25000}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tmp="$(mktemp -d)"
pids=()
cleanup() {
	local pid
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

(cd "$root" && CGO_ENABLED=0 go build -o "$tmp/cairn" .)
cairn="$tmp/cairn"

initial=""
for i in 0 1 2; do
	initial+="${initial:+,}m$i=http://127.0.0.1:$((BASE_PORT + 10 * i + 1))"
done
for i in 0 1 2; do
	c=$((BASE_PORT + 10 * i)) p=$((BASE_PORT + 10 * i + 1))
	"$cairn" --name "m$i" --data-dir "$tmp/m$i" --initial-cluster "$initial" \
		--initial-advertise-peer-urls "http://127.0.0.1:$p" --listen-peer-urls "http://127.0.0.1:$p" \
		--listen-client-urls "http://127.0.0.1:$c" --advertise-client-urls "http://127.0.0.1:$c" \
		--log-level warn 2>"$tmp/m$i.log" &
	pids+=($!)
done
proxy="http://127.0.0.1:$((BASE_PORT + 100))"
"$cairn" --proxy on --name proxy --data-dir "$tmp/proxy" --initial-cluster "$initial" \
	--listen-client-urls "$proxy" --log-level warn 2>"$tmp/proxy.log" &
proxy_pid=$!
pids+=("$proxy_pid")

# Wait for a leader and for the proxy to know every member.
for _ in $(seq 100); do
	if curl -sf -XPUT "http://127.0.0.1:$BASE_PORT/v2/keys/ready" -d value=1 >/dev/null 2>&1 &&
		[ "$(curl -s "$proxy/v2/config/local/proxy" | grep -o 'http://' | wc -l)" = 3 ]; then
		break
	fi
	sleep 0.2
done
# The proxy sends everything to the first endpoint it lists: compare with it.
member=$(curl -s "$proxy/v2/config/local/proxy" | sed 's/.*"endpoints":\["\([^"]*\)".*/\1/')
echo "proxy $proxy (pid $proxy_pid) forwards to $member"

ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }

printf '| workload | path | requests/s | mean | p50 | p99 | proxy CPU per request |\n|---|---|---|---|---|---|---|\n'
for w in $WORKLOADS; do
	for path in direct proxy; do
		ep=$member
		[ "$path" = proxy ] && ep=$proxy
		before=$(cpu "$proxy_pid")
		line=$("$cairn" bench --endpoints "$ep" --workload "$w" --clients "$CLIENTS" --duration "$DURATION" | tail -1)
		after=$(cpu "$proxy_pid")
		get() { echo "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
		reqs=$(get requests)
		per="-"
		if [ "$path" = proxy ]; then
			per=$(awk -v d=$((after - before)) -v t="$ticks" -v n="$reqs" 'BEGIN { printf "%.1f µs", d / t / n * 1e6 }')
		fi
		printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$w" "$path" "$(get throughput)" "$(get mean)" "$(get p50)" "$(get p99)" "$per"
	done
done
