#!/usr/bin/env bash
# Compares Cairn with etcd 3.4 (v2 API, --enable-v2) on this machine, with
# `cairn bench` as the client for both: a 1-member and a 3-member cluster
# of each, on loopback, one cluster at a time, each from fresh data
# directories, all with their default heartbeat and election timeouts.
# Against each cluster it runs the same matrix (puts at 1, 16, 64 and 256
# clients, linearizable and serializable gets at 64 clients, and a watch
# fan-out to 1000 watchers), then prints one markdown table.
#
# Usage: bash bench/compare.sh   (from anywhere; builds cairn from the repo)
#
# Environment:
#   DURATION      length of each measured run (default 8s)
#   WATCHERS      watchers of the fan-out row (default 1000)
#   WATCH_WRITES  writes of the watched key (default 100)
#   WATCH_RATE    writes per second in the fan-out row (default 20)
#   BASE_PORT     first loopback port to try (default 24000: below Linux's
#                 ephemeral range, so no client connection holds one)
#   ETCD          the etcd binary (default: etcd on PATH, installed with
#                 apt-get if missing)
#
# Every process it starts is stopped by PID when it exits.
set -euo pipefail

DURATION=${DURATION:-8s}
WATCHERS=${WATCHERS:-1000}
WATCH_WRITES=${WATCH_WRITES:-100}
WATCH_RATE=${WATCH_RATE:-20}
BASE_PORT=${BASE_PORT:-24000}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tmp="$(mktemp -d)"
running=() # PIDs of the current cluster's members

stop_members() {
	local pid
	for pid in "${running[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${running[@]}"; do
		# Give each member 10 s to stop, then kill it.
		for _ in $(seq 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	running=()
}

cleanup() {
	stop_members
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "compare: $*" >&2; }

# --- the binaries -----------------------------------------------------------

log "building cairn"
(cd "$root" && go build -o "$tmp/cairn" .)
cairn="$tmp/cairn"

ETCD=${ETCD:-$(command -v etcd || true)}
if [[ -z "$ETCD" ]]; then
	log "installing etcd-server (apt-get)"
	apt-get update >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y etcd-server etcd-client >&2
	ETCD=$(command -v etcd)
fi
log "$("$ETCD" --version | head -1)"

# --- ports ------------------------------------------------------------------

next_port=$BASE_PORT
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# take_port sets port to the next port nothing listens on.
port=0
take_port() {
	while port_busy "$next_port"; do
		next_port=$((next_port + 1))
	done
	port=$next_port
	next_port=$((next_port + 1))
}

# --- clusters ---------------------------------------------------------------

endpoints="" # the current cluster's client URLs, comma-separated

# start_cluster PRODUCT MEMBERS: starts a fresh cluster, waits until it
# takes writes.
start_cluster() {
	local product=$1 n=$2 i dir initial="" peers=() clients=()
	dir="$tmp/$product-$n"
	mkdir -p "$dir"
	for ((i = 0; i < n; i++)); do
		take_port
		clients+=("http://127.0.0.1:$port")
		take_port
		peers+=("http://127.0.0.1:$port")
		initial+="m$i=${peers[i]},"
	done
	initial=${initial%,}
	for ((i = 0; i < n; i++)); do
		local args=(--name "m$i" --data-dir "$dir/m$i"
			--initial-cluster "$initial" --initial-cluster-token "$product-$n"
			--initial-advertise-peer-urls "${peers[i]}" --listen-peer-urls "${peers[i]}"
			--listen-client-urls "${clients[i]}" --advertise-client-urls "${clients[i]}")
		if [[ $product == etcd ]]; then
			"$ETCD" "${args[@]}" --enable-v2 --initial-cluster-state new >"$dir/m$i.log" 2>&1 &
		else
			"$cairn" "${args[@]}" >"$dir/m$i.log" 2>&1 &
		fi
		running+=($!)
	done
	endpoints=$(
		IFS=,
		echo "${clients[*]}"
	)
	local ep deadline=$((SECONDS + 60))
	for ep in "${clients[@]}"; do
		until curl -sf -m 2 -X PUT "$ep/v2/keys/compare-ready" -d value=1 >/dev/null; do
			if ((SECONDS > deadline)); then
				log "$product ($n members) did not start; its logs:"
				tail -n 20 "$dir"/*.log >&2
				exit 1
			fi
			sleep 0.2
		done
	done
	log "$product, $n member(s), ready at $endpoints"
}

# --- the matrix ---------------------------------------------------------------

# Rows: label, then the arguments of cairn bench.
rows=(
	"put|1|--workload put --clients 1"
	"put|16|--workload put --clients 16"
	"put|64|--workload put --clients 64"
	"put|256|--workload put --clients 256"
	"get (linearizable)|64|--workload get --clients 64"
	"get (serializable)|64|--workload get-serializable --clients 64"
	"watch fan-out|$WATCHERS watchers|--workload watch --watchers $WATCHERS --total $WATCH_WRITES --rate $WATCH_RATE"
)

declare -A results # "product members row" -> the machine-readable line

run_matrix() {
	local product=$1 n=$2 r label clients args out line
	for r in "${!rows[@]}"; do
		IFS='|' read -r label clients args <<<"${rows[r]}"
		# $args is a list of words: unquoted on purpose.
		if [[ $args == *"--workload watch"* ]]; then
			out=$("$cairn" bench --endpoints "$endpoints" $args --timeout 30s 2>&1) || true
		else
			out=$("$cairn" bench --endpoints "$endpoints" $args --duration "$DURATION" 2>&1) || true
		fi
		printf '%s\n' "$out" | sed "s/^/  [$product-$n] /" >&2
		line=$(printf '%s\n' "$out" | grep '^workload=' || true)
		results["$product $n $r"]=$line
	done
}

for n in 1 3; do
	for product in cairn etcd; do
		start_cluster "$product" "$n"
		run_matrix "$product" "$n"
		stop_members
	done
done

# --- the table -----------------------------------------------------------------

# field LINE KEY prints KEY's value in a machine-readable line.
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }
num() { field "$1" "$2" | sed 's/[^0-9.]//g'; }

cell() { # throughput (or events) column
	local line=$1
	[[ -z $line ]] && { echo "failed"; return; }
	if [[ $(field "$line" workload) == watch ]]; then
		echo "$(field "$line" events)/$(field "$line" expected) events"
	else
		printf '%.0f/s' "$(num "$line" throughput)"
	fi
}
lat() { [[ -n $1 ]] && echo "$(num "$1" p50) / $(num "$1" p99) ms" || echo "-"; }
ratio() { # Cairn ÷ etcd throughput; for the fan-out, etcd's p99 ÷ Cairn's
	local a=$1 b=$2
	if [[ -z $a || -z $b ]]; then
		echo "-"
	elif [[ $(field "$a" workload) == watch ]]; then
		awk -v c="$(num "$a" p99)" -v e="$(num "$b" p99)" 'BEGIN { if (c > 0) printf "%.2f× (p99)", e / c; else print "-" }'
	else
		awk -v c="$(num "$a" throughput)" -v e="$(num "$b" throughput)" 'BEGIN { if (e > 0) printf "%.2f×", c / e; else print "-" }'
	fi
}
errs() { echo "$(field "$1" errors) / $(field "$2" errors)"; }

echo
echo "Cairn vs etcd $("$ETCD" --version | sed -n 's/^etcd Version: //p') (v2 API), loopback, $(nproc) cores, ${DURATION} per row; watch: $WATCHERS watchers, $WATCH_WRITES writes at $WATCH_RATE/s"
echo
echo "| members | workload | clients | Cairn | etcd | Cairn ÷ etcd | Cairn p50 / p99 | etcd p50 / p99 | errors Cairn / etcd |"
echo "|---|---|---|---|---|---|---|---|---|"
for n in 1 3; do
	for r in "${!rows[@]}"; do
		IFS='|' read -r label clients _ <<<"${rows[r]}"
		c=${results["cairn $n $r"]:-}
		e=${results["etcd $n $r"]:-}
		echo "| $n | $label | $clients | $(cell "$c") | $(cell "$e") | $(ratio "$c" "$e") | $(lat "$c") | $(lat "$e") | $(errs "$c" "$e") |"
	done
done
echo
echo "Throughput is acknowledged requests per second; latencies are per request. For the watch fan-out, the Cairn and etcd columns are events delivered of those expected, the latencies are from the write's acknowledgement to each watcher's receipt, and the ratio is etcd's p99 over Cairn's."
