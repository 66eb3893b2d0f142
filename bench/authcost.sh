#!/usr/bin/env bash
# Measures what v2 auth costs the server per request: two single-member
# clusters on loopback, one with auth disabled and one with auth enabled
# (a root user, guest without access), each loaded in turn with the same
# `cairn bench` run, ROUNDS times alternating, while the server's CPU time
# (utime + stime from /proc/PID/stat) is read before and after each run.
# The client runs on the same machine; only the server's CPU is counted.
#
# Usage: bash bench/authcost.sh   (from anywhere; builds cairn from the repo)
#
# Environment:
#   TOTAL      requests per run (default 30000)
#   CLIENTS    concurrent clients (default 8)
#   WORKLOAD   cairn bench workload (default get-serializable; put also works)
#   ROUNDS     runs against each member (default 3)
#   BASE_PORT  first loopback port (default 24500)
#
# Every process it starts is stopped by PID when it exits.
set -euo pipefail

TOTAL=${TOTAL:-30000}
CLIENTS=${CLIENTS:-8}
WORKLOAD=${WORKLOAD:-get-serializable}
ROUNDS=${ROUNDS:-3}
BASE_PORT=${BASE_PORT:-24500}

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
tck=$(getconf CLK_TCK)

start() { # name client-port peer-port
	local c="http://127.0.0.1:$2" p="http://127.0.0.1:$3"
	"$tmp/cairn" --name "$1" --data-dir "$tmp/$1" --listen-client-urls "$c" --advertise-client-urls "$c" \
		--listen-peer-urls "$p" --initial-advertise-peer-urls "$p" --initial-cluster "$1=$p" \
		--log-level warn >"$tmp/$1.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do
		curl -sf "$c/health" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "member $1 did not start" >&2
	exit 1
}

cpu_ticks() { # pid: utime + stime, in clock ticks
	awk '{print $14 + $15}' "/proc/$1/stat"
}

off_url="http://127.0.0.1:$BASE_PORT"
on_url="http://127.0.0.1:$((BASE_PORT + 2))"
start off "$BASE_PORT" "$((BASE_PORT + 1))"
off_pid=${pids[-1]}
start on "$((BASE_PORT + 2))" "$((BASE_PORT + 3))"
on_pid=${pids[-1]}
curl -sf -X PUT "$on_url/v2/auth/users/root" -d '{"user":"root","password":"rootpw"}' >/dev/null
curl -sf -X PUT "$on_url/v2/auth/enable" >/dev/null
curl -sf -u root:rootpw -X PUT "$on_url/v2/auth/roles/guest" -d '{"role":"guest","revoke":{"kv":{"read":["/*"],"write":["/*"]}}}' >/dev/null
test "$(curl -s -o /dev/null -w '%{http_code}' "$on_url/v2/keys/")" = 401

run() { # label url pid [bench flags...]
	local label=$1 url=$2 pid=$3
	shift 3
	local before after out
	before=$(cpu_ticks "$pid")
	out=$("$tmp/cairn" bench --endpoints "$url" --workload "$WORKLOAD" --total "$TOTAL" --clients "$CLIENTS" "$@")
	after=$(cpu_ticks "$pid")
	if grep -q 'errors=[1-9]' <<<"$out"; then
		echo "$label: the run had errors:" >&2
		echo "$out" >&2
		exit 1
	fi
	awk -v l="$label" -v t="$((after - before))" -v hz="$tck" -v n="$TOTAL" \
		'BEGIN { printf "| %-4s | %6.2f | %6.1f |\n", l, t / hz, t / hz * 1e6 / n }'
}

# Fill the key space once on each member.
"$tmp/cairn" bench --endpoints "$off_url" --workload put --total 2000 --clients "$CLIENTS" >/dev/null
"$tmp/cairn" bench --endpoints "$on_url" --workload put --total 2000 --clients "$CLIENTS" --user root:rootpw >/dev/null

echo "workload $WORKLOAD, $TOTAL requests per run, $CLIENTS clients"
echo
echo "| auth | server CPU s | CPU µs/request |"
echo "|------|-------------:|---------------:|"
for _ in $(seq "$ROUNDS"); do
	run off "$off_url" "$off_pid"
	run on "$on_url" "$on_pid" --user root:rootpw
done
