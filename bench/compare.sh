#!/usr/bin/env bash
# Measures Cairn against etcd 3.4 (v2 API, --enable-v2) on this machine for
# the aims of issue 15 ("twice etcd's throughput at half its CPU per
# operation, in a third of its memory") and prints the ratios as markdown.
#
# Both products run side by side on loopback with their default timeouts,
# from fresh data directories, and every throughput row alternates them
# run by run (Cairn first in odd rounds, etcd first in even ones), so a
# ratio compares runs seconds apart on a shared, noisy machine. Compare
# ratios from one run of this script, not absolute numbers across runs.
#
# The client is the shared load generator, ../shared/loadgen beside the
# repository (standard-library Go: one hand-written HTTP/1.1 keep-alive
# connection per client, no net/http client, so it costs the 2 cores it
# shares with the servers little). It reads the servers' CPU time
# (utime + stime of every member, /proc/PID/stat) over exactly its
# measured window, so CPU per operation leaves out warmup and the
# writes that fill the key space. Without ../shared/loadgen the script
# says so and falls back to `cairn bench`, a net/http client that costs
# more per request, with /proc read around each whole run.
#
# The rows:
#   3 members, put, 64 clients: throughput, server CPU per put
#   3 members, get, 64 clients: Cairn's default GET (linearizable, a
#       ReadIndex round) against etcd's default GET (served locally,
#       possibly stale): throughput, server CPU per get
#   3 members, put, 1 client: latency p50
#   max latency against p99 of the 64-client runs (steady closed-loop load)
#   1 member, put, 64 clients: throughput, server CPU per put
#   1 member, LOAD_KEYS (100,000) keys of 256 B written once each: RSS,
#       data directory size (du), and the time from kill -9 to the first
#       answered GET of the last key written (and RSS after that restart);
#       also the bytes written to disk per key (/proc/PID/io), which shows
#       write amplification
#   BIG=1: the same for BIG_KEYS (1,000,000) keys (several minutes)
#
# Until issue 15 this script ran another matrix with cairn bench: puts at
# 1, 16, 64 and 256 clients, serializable gets, and a watch fan-out to
# 1000 watchers. Those rows are not the issue's aims and are gone; the
# shared generator measures them (-clients N, -op watch -clients 1000).
#
# Usage: bash bench/compare.sh   (from anywhere; builds cairn from the repo)
#
# Environment:
#   DURATION   measured window of each throughput run (default 8s; the
#              generator adds a 1 s warmup)
#   ROUNDS     runs of each product per throughput row, and kill -9
#              restarts per product (default 2)
#   CLIENTS    clients of the loaded rows (default 64)
#   KEYS       key space of the put and get rows (default 10000)
#   VALUE      value size in bytes (default 256)
#   LOAD_KEYS  keys of the memory and restart row (default 100000)
#   BIG        1: also the BIG_KEYS restart row (default 0: skipped)
#   BIG_KEYS   keys of that row (default 1000000)
#   PHASES     which parts to run (default "3m 1m load": the 3-member rows,
#              the 1-member put, the LOAD_KEYS row; "big" is the BIG_KEYS row)
#   SETTLE     seconds a loaded member idles before its RSS is read (default 5)
#   BASE_PORT  first loopback port to try (default 24000: below Linux's
#              ephemeral range, so no client connection holds one)
#   ETCD       the etcd binary (default: etcd on PATH)
#   LOADGEN    the shared generator's directory (default ../shared/loadgen
#              relative to the repository)
#
# Needs bash, curl, python3 and etcd 3.4 (Debian: apt-get install
# etcd-server). Every process it starts is stopped by its PID: at the
# end of each phase, and on exit, interrupted or not.
set -euo pipefail

DURATION=${DURATION:-8s}
ROUNDS=${ROUNDS:-2}
CLIENTS=${CLIENTS:-64}
KEYS=${KEYS:-10000}
VALUE=${VALUE:-256}
LOAD_KEYS=${LOAD_KEYS:-100000}
BIG=${BIG:-0}
BIG_KEYS=${BIG_KEYS:-1000000}
SETTLE=${SETTLE:-5}
PHASES=${PHASES:-3m 1m load}
BASE_PORT=${BASE_PORT:-24000}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOADGEN=${LOADGEN:-$root/../shared/loadgen}
tmp="$(mktemp -d)"
results="$tmp/results.jsonl" # one JSON object per measurement
running=()                   # PIDs of the members this script runs now

log() { echo "compare: $*" >&2; }

# stop_pid PID: SIGTERM, then SIGKILL after 10 s; reaps it.
stop_pid() {
	local pid=$1
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

stop_all() {
	local pid
	for pid in "${running[@]}"; do
		stop_pid "$pid"
	done
	running=()
}

# forget PID: drop it from running (it was killed and reaped).
forget() {
	local pid keep=()
	for pid in "${running[@]}"; do
		[[ $pid == "$1" ]] || keep+=("$pid")
	done
	running=("${keep[@]}")
}

cleanup() {
	stop_all
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for tool in curl python3; do
	command -v "$tool" >/dev/null || {
		log "$tool is needed"
		exit 1
	}
done
ETCD=${ETCD:-$(command -v etcd || true)}
if [[ -z $ETCD ]]; then
	log "etcd is not on PATH (Debian: apt-get install etcd-server), or set ETCD"
	exit 1
fi

# --- the binaries ---------------------------------------------------------------

log "building cairn"
(cd "$root" && CGO_ENABLED=0 go build -o "$tmp/cairn" .)
cairn="$tmp/cairn"
lg=""
if [[ -f $LOADGEN/go.mod ]]; then
	log "building the shared load generator"
	(cd "$LOADGEN" && go build -o "$tmp/loadgen" .)
	lg="$tmp/loadgen"
	client="the shared load generator (../shared/loadgen)"
else
	client="cairn bench (fallback)"
	log "NOTE: no load generator at ../shared/loadgen beside the repository;"
	log "NOTE: measuring with \`cairn bench\` instead, a net/http client that costs"
	log "NOTE: more CPU per request, and with server CPU read around each whole run"
	log "NOTE: (get rows: including the writes that fill their 1000 keys)."
fi

# --- the summary program ----------------------------------------------------------

cat >"$tmp/summary.py" <<'PY'
import json, sys, statistics

def loadgen(row, product, rnd):
    """One record from the shared generator's -json report on stdin."""
    d = json.load(sys.stdin)
    lat = d.get("latency") or {}
    ops = d.get("ops") or 0
    cpu = d.get("server_cpu_s")
    # WAL fsyncs of all members over the window, from /metrics: how many
    # writes share one (group commit), and how long one takes.
    md = d.get("metrics_delta") or {}
    fs_n = md.get(product + "_disk_wal_fsync_duration_seconds_count")
    fs_s = md.get(product + "_disk_wal_fsync_duration_seconds_sum")
    members = len(d.get("endpoints") or []) or 1
    print(json.dumps({"kind": "run", "row": row, "product": product, "round": int(rnd),
        "ops_per_fsync": ops * members / fs_n if fs_n else None, "fsync_ms": fs_s * 1000 / fs_n if fs_n else None,
        "ops_per_s": d.get("ops_per_s", 0), "p50_ms": lat.get("p50_ms"), "p99_ms": lat.get("p99_ms"),
        "max_ms": lat.get("max_ms"), "cpu_us_op": cpu * 1e6 / ops if cpu is not None and ops else None,
        "other_cpu_s": d.get("other_cpu_s"), "client_cpu_s": d.get("client_cpu_s"),
        "window_s": d.get("window_s"), "errors": d.get("errors", 0)}))

def cairnbench(row, product, rnd, ticks, hz):
    """One record from `cairn bench` (its key=value line) on stdin."""
    kv = {}
    for line in sys.stdin:
        if line.startswith("workload="):
            kv = dict(f.split("=", 1) for f in line.split())
    ms = lambda k: float(kv[k].rstrip("ms")) if k in kv and kv[k].endswith("ms") else (float(kv[k].rstrip("s")) * 1000 if k in kv else None)
    reqs = int(kv.get("requests", 0)) - int(kv.get("errors", 0))
    cpu = int(ticks) / int(hz)
    print(json.dumps({"kind": "run", "row": row, "product": product, "round": int(rnd),
        "ops_per_s": float(kv.get("throughput", "0").rstrip("/s")), "p50_ms": ms("p50"), "p99_ms": ms("p99"),
        "max_ms": ms("max"), "cpu_us_op": cpu * 1e6 / reqs if reqs else None, "other_cpu_s": None,
        "client_cpu_s": None, "ops_per_fsync": None, "fsync_ms": None,
        "window_s": ms("duration") / 1000 if ms("duration") else None,
        "errors": int(kv.get("errors", 0))}))

def ready(row, product, rnd):
    """first_get_ms of the generator's ready op."""
    d = json.load(sys.stdin)
    print(d["ready"]["first_get_ms"])

def fmt(v, unit=""):
    if v is None:
        return "-"
    if abs(v) >= 100:
        return f"{v:,.0f}{unit}"
    if abs(v) >= 10:
        return f"{v:.1f}{unit}"
    return f"{v:.2f}{unit}"

def report(path, targets):
    recs = [json.loads(l) for l in open(path) if l.strip()]
    runs = [r for r in recs if r["kind"] == "run"]
    vals = {}
    for r in recs:
        if r["kind"] == "value":
            vals.setdefault((r["row"], r["product"], r["what"]), []).append(r["v"])
    rows = []
    for r in runs:
        if r["row"] not in rows:
            rows.append(r["row"])
    if runs:
        print("### Every run\n")
        print("| row | product | round | ops/s | p50 ms | p99 ms | max ms | server CPU µs/op | ops per fsync | fsync ms | other CPU s | errors |")
        print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        print(f"| {r['row']} | {r['product']} | {r['round']} | {fmt(r['ops_per_s'])} | {fmt(r['p50_ms'])} | {fmt(r['p99_ms'])} "
              f"| {fmt(r['max_ms'])} | {fmt(r['cpu_us_op'])} | {fmt(r.get('ops_per_fsync'))} | {fmt(r.get('fsync_ms'))} "
              f"| {fmt(r['other_cpu_s'])} | {r['errors']} |")
    if vals:
        print("\n### Memory, disk and restart (1 member)\n")
        print("| measurement | Cairn | etcd |")
        print("|---|---:|---:|")
        seen = []
        for (row, product, what) in vals:
            if (row, what) not in seen:
                seen.append((row, what))
        for row, what in seen:
            c = vals.get((row, "cairn", what), [])
            e = vals.get((row, "etcd", what), [])
            print(f"| {row}: {what} | {' / '.join(fmt(v) for v in c) or '-'} | {' / '.join(fmt(v) for v in e) or '-'} |")

    def mean(row, product, field):
        xs = [r[field] for r in runs if r["row"] == row and r["product"] == product and r[field] is not None]
        return statistics.mean(xs) if xs else None

    def med(row, product, what):
        xs = vals.get((row, product, what), [])
        return statistics.median(xs) if xs else None

    def verdict(ratio, target, higher):
        if ratio is None or target is None:
            return "-"
        if (ratio >= target) if higher else (ratio <= target):
            return "met"
        return f"missed: needs ×{target / ratio:.2f} more" if higher else f"missed: needs ÷{ratio / target:.2f}"

    T = targets
    aims = []
    def aim(name, c, e, unit, target, higher):
        """A ratio aim: Cairn ÷ etcd against target."""
        if c is None and e is None:
            return  # a row this run left out
        ratio = c / e if c is not None and e not in (None, 0) else None
        t = "-" if target is None else (("≥ " if higher else "≤ ") + f"{target:.2f}× etcd")
        aims.append(f"| {name} | {fmt(c, unit)} | {fmt(e, unit)} | {'-' if ratio is None else f'{ratio:.2f}'} | {t} | {verdict(ratio, target, higher)} |")

    def absaim(name, c, e, unit, limit):
        """An absolute aim: Cairn's figure at most limit."""
        if c is None:
            return
        ratio = c / e if e not in (None, 0) else None
        v = "met" if c <= limit else f"missed: needs ÷{c / limit:.2f}"
        aims.append(f"| {name} | {fmt(c, unit)} | {fmt(e, unit)} | {'-' if ratio is None else f'{ratio:.2f}'} | ≤ {fmt(limit, unit)} | {v} |")

    def mr(row, p):
        xs = [r["max_ms"] / r["p99_ms"] for r in runs if r["row"] == row and r["product"] == p and r["max_ms"] and r["p99_ms"]]
        return max(xs) if xs else None

    aim("put, 64 clients, 3 members: throughput", mean("put-64-3m", "cairn", "ops_per_s"), mean("put-64-3m", "etcd", "ops_per_s"), "/s", 2.0, True)
    aim("put, 64 clients, 3 members: server CPU per put", mean("put-64-3m", "cairn", "cpu_us_op"), mean("put-64-3m", "etcd", "cpu_us_op"), " µs", 0.5, False)
    aim("put, 64 clients, 3 members: p99", mean("put-64-3m", "cairn", "p99_ms"), mean("put-64-3m", "etcd", "p99_ms"), " ms", 1.0, False)
    aim("put, 64 clients, 1 member: throughput", mean("put-64-1m", "cairn", "ops_per_s"), mean("put-64-1m", "etcd", "ops_per_s"), "/s", 2.0, True)
    aim("put, 64 clients, 1 member: server CPU per put", mean("put-64-1m", "cairn", "cpu_us_op"), mean("put-64-1m", "etcd", "cpu_us_op"), " µs", None, False)
    aim("put, 64 clients, 1 member: p99", mean("put-64-1m", "cairn", "p99_ms"), mean("put-64-1m", "etcd", "p99_ms"), " ms", 1.0, False)
    aim("get, 64 clients, 3 members (Cairn linearizable, etcd stale): throughput", mean("get-64-3m", "cairn", "ops_per_s"), mean("get-64-3m", "etcd", "ops_per_s"), "/s", 1.0, True)
    aim("get, 64 clients, 3 members: server CPU per get", mean("get-64-3m", "cairn", "cpu_us_op"), mean("get-64-3m", "etcd", "cpu_us_op"), " µs", 1.0, False)
    aim("put, 1 client, 3 members: latency p50", mean("put-1-3m", "cairn", "p50_ms"), mean("put-1-3m", "etcd", "p50_ms"), " ms", 1.0, False)
    for row, label in (("put-64-3m", "put, 64 clients, 3 members"), ("get-64-3m", "get, 64 clients, 3 members"), ("put-64-1m", "put, 64 clients, 1 member")):
        absaim(f"{label}: max latency ÷ p99 (worst run)", mr(row, "cairn"), mr(row, "etcd"), "", 10.0)
    for keys, row in ((T["load_keys"], "load"), (T["big_keys"], "big")):
        if med(row, "cairn", "RSS MiB") is None:
            continue
        k = f"{keys:,} keys × {T['value']} B"
        if row == "load":
            absaim(f"{k}: RSS after loading", med(row, "cairn", "RSS MiB"), med(row, "etcd", "RSS MiB"), " MiB", 100.0)
            aim(f"{k}: RSS after loading, against etcd's", med(row, "cairn", "RSS MiB"), med(row, "etcd", "RSS MiB"), " MiB", 1 / 3, False)
            aim(f"{k}: RSS after kill -9 and restart", med(row, "cairn", "RSS after restart MiB"), med(row, "etcd", "RSS after restart MiB"), " MiB", None, False)
            data = keys * T["value"] / (1 << 20)
            absaim(f"{k}: data directory (du; the data is {data:.1f} MiB)", med(row, "cairn", "data dir MiB"), med(row, "etcd", "data dir MiB"), " MiB", 2 * data)
            aim(f"{k}: kill -9 to first answered GET (median)", med(row, "cairn", "kill -9 to first GET ms"), med(row, "etcd", "kill -9 to first GET ms"), " ms", 0.5, False)
        else:
            absaim(f"{k}: kill -9 to first answered GET (median)", med(row, "cairn", "kill -9 to first GET ms"), med(row, "etcd", "kill -9 to first GET ms"), " ms", 3000.0)
    print("\n### Against the aims\n")
    print("| aim | Cairn | etcd | Cairn ÷ etcd | target | verdict |")
    print("|---|---:|---:|---:|---|---|")
    print("\n".join(aims))

if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "report":
        t = json.loads(args[1])
        report(args[0], t)
    else:
        globals()[cmd](*args)
PY
summary() { python3 "$tmp/summary.py" "$@"; }

# value ROW PRODUCT WHAT NUMBER records a measurement for the report.
value() {
	printf '{"kind":"value","row":"%s","product":"%s","what":"%s","v":%s}\n' "$1" "$2" "$3" "$4" >>"$results"
}

# --- ports and clusters ------------------------------------------------------------

next_port=$BASE_PORT
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=0
take_port() { # sets port to the next port nothing listens on
	while port_busy "$next_port"; do
		next_port=$((next_port + 1))
	done
	port=$next_port
	next_port=$((next_port + 1))
}

# Per product: the client URLs (comma-separated), the members' PIDs, and
# what starts member i again (for kill -9 and restart).
declare -A eps pids dirs
declare -A member_args # "product i" -> the member's arguments, one per line

# start_member PRODUCT I: starts member I of PRODUCT with its saved
# arguments, as a child of this shell (so that it can be waited for),
# and adds its PID to running and sets member_pid to it.
member_pid=0
start_member() {
	local product=$1 i=$2 args
	mapfile -t args <<<"${member_args["$product $i"]}"
	if [[ $product == etcd ]]; then
		"$ETCD" "${args[@]}" >>"${dirs[$product]}/m$i.log" 2>&1 &
	else
		"$cairn" "${args[@]}" >>"${dirs[$product]}/m$i.log" 2>&1 &
	fi
	member_pid=$!
	running+=("$member_pid")
}

# start_cluster PRODUCT MEMBERS TAG: a fresh cluster; returns when every
# member takes a write.
start_cluster() {
	local product=$1 n=$2 tag=$3 i dir initial="" peers=() clients=() list=()
	dir="$tmp/$tag-$product"
	mkdir -p "$dir"
	dirs[$product]=$dir
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
			--initial-cluster "$initial" --initial-cluster-token "$tag-$product" --initial-cluster-state new
			--initial-advertise-peer-urls "${peers[i]}" --listen-peer-urls "${peers[i]}"
			--listen-client-urls "${clients[i]}" --advertise-client-urls "${clients[i]}" --log-level error)
		if [[ $product == etcd ]]; then
			args+=(--enable-v2)
		fi
		member_args["$product $i"]=$(printf '%s\n' "${args[@]}")
		start_member "$product" "$i"
		list+=("$member_pid")
	done
	pids[$product]=$(
		IFS=,
		echo "${list[*]}"
	)
	eps[$product]=$(
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
	log "$product, $n member(s), ready at ${eps[$product]} (PIDs ${pids[$product]})"
}

# --- measuring --------------------------------------------------------------------

cpu_ticks() { # the sum of utime + stime of the PIDs (comma-separated)
	local s=0 p
	for p in ${1//,/ }; do
		s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat")))
	done
	echo "$s"
}

# measure ROW PRODUCT ROUND OP CLIENTS [POPULATE]: one throughput run.
measure() {
	local row=$1 product=$2 round=$3 op=$4 clients=$5 populate=${6:-true} out rec
	if [[ -n $lg ]]; then
		out=$("$lg" -endpoints "${eps[$product]}" -op "$op" -clients "$clients" -duration "$DURATION" \
			-keys "$KEYS" -value-size "$VALUE" -populate="$populate" -pids "${pids[$product]}" \
			-metrics "${product}_disk_wal_fsync_duration_seconds_count,${product}_disk_wal_fsync_duration_seconds_sum" -json) || {
			log "$row $product round $round: the generator failed"
			out='{"errors":-1}'
		}
		rec=$(summary loadgen "$row" "$product" "$round" <<<"$out")
	else
		local w=$op before after keys=$KEYS
		if [[ $op == get ]]; then
			# Cairn's plain GET is linearizable, etcd's is served locally:
			# cairn bench's get sends quorum=true (linearizable on both), its
			# get-serializable the local read etcd serves by default.
			if [[ $product == etcd ]]; then
				w=get-serializable
			fi
			keys=1000
		fi
		before=$(cpu_ticks "${pids[$product]}")
		out=$("$cairn" bench --endpoints "${eps[$product]}" --workload "$w" --clients "$clients" \
			--duration "$DURATION" --key-space "$keys" --value-size "$VALUE" --prefix /bench) || {
			log "$row $product round $round: cairn bench failed"
		}
		after=$(cpu_ticks "${pids[$product]}")
		rec=$(summary cairnbench "$row" "$product" "$round" "$((after - before))" "$(getconf CLK_TCK)" <<<"$out")
	fi
	echo "$rec" >>"$results"
	log "$row $product round $round: $rec"
}

# alternate ROW OP CLIENTS: ROUNDS runs of each product, alternating.
alternate() {
	local row=$1 op=$2 clients=$3 r p
	for ((r = 1; r <= ROUNDS; r++)); do
		local order=(cairn etcd) pop=true
		if ((r % 2 == 0)); then
			order=(etcd cairn)
		fi
		if ((r > 1)); then
			pop=false # the key space is written once
		fi
		for p in "${order[@]}"; do
			measure "$row" "$p" "$r" "$op" "$clients" "$pop"
		done
	done
}

# rss_mib PID [FIELD]: VmRSS (or RssAnon, RssFile) in MiB.
rss_mib() { awk -v f="${2:-VmRSS}:" '$1 == f { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
# write_bytes PID: the bytes PID has caused to be written to storage.
write_bytes() { awk '$1 == "write_bytes:" { print $2 }' "/proc/$1/io"; }
du_mib() { du -sk "$1" | awk '{ printf "%.1f", $1 / 1024 }'; }

# first_get PRODUCT SINCE KEY: waits for member 0 to answer /health and
# then a GET of KEY; prints the milliseconds since SINCE (ns).
first_get() {
	local product=$1 since=$2 key=$3 ep=${eps[$1]%%,*}
	if [[ -n $lg ]]; then
		"$lg" -endpoints "$ep" -op ready -since "$since" -ready-key "$key" -duration 600s -json |
			summary ready x x 0
	else
		local deadline=$((SECONDS + 600))
		until [[ $(curl -s -m 1 -o /dev/null -w '%{http_code}' "$ep/v2/keys/bench/$key") == 200 ]]; do
			((SECONDS < deadline)) || {
				log "$product answered no GET in 600 s"
				exit 1
			}
			sleep 0.005
		done
		echo $((($(date +%s%N) - since) / 1000000))
	fi
}

# settle_quiet PIDS: waits (up to 120 s) until the PIDs (comma-separated)
# together use under 5% of a core over a second, so that a restart is
# not timed while the other product still digests its load (etcd writes
# a snapshot of a million keys for a while after its last write).
settle_quiet() {
	local hz before after i
	hz=$(getconf CLK_TCK)
	for ((i = 0; i < 120; i++)); do
		before=$(cpu_ticks "$1")
		sleep 1
		after=$(cpu_ticks "$1")
		if (((after - before) * 20 < hz)); then
			return
		fi
	done
	log "still busy after 120 s: timing the restart anyway"
}

# load_and_restart ROW N: fresh 1-member clusters of each product, N keys
# of VALUE bytes written once each; then RSS, du, and ROUNDS kill -9
# restarts per product (alternating), each timed to the first GET of the
# last key written once both products are quiet, and RSS after the last
# restart.
load_and_restart() {
	local row=$1 n=$2 p r key pid since ms
	for p in cairn etcd; do
		start_cluster "$p" 1 "$row"
	done
	declare -A wrote
	for p in cairn etcd; do
		wrote[$p]=$(write_bytes "${pids[$p]}")
		log "$row: writing $n keys to $p"
		if [[ -n $lg ]]; then
			"$lg" -endpoints "${eps[$p]}" -op load -clients "$CLIENTS" -keys "$n" -value-size "$VALUE" -json >"$tmp/load-$p.json"
			key=$(printf 'k%07d' $((n - 1)))
		else
			"$cairn" bench --endpoints "${eps[$p]}" --workload get-serializable --key-space "$n" --total 1 \
				--clients "$CLIENTS" --value-size "$VALUE" --prefix /bench >/dev/null
			# cairn bench names key i /bench/%08d (wider when its
			# key space needs more digits).
			local last=$((n - 1))
			key=$(printf '%0*d' "$((${#last} > 8 ? ${#last} : 8))" "$last")
		fi
	done
	sleep "$SETTLE"
	for p in cairn etcd; do
		value "$row" "$p" "disk bytes written per key loaded" "$((($(write_bytes "${pids[$p]}") - wrote[$p]) / n))"
		value "$row" "$p" "RSS MiB" "$(rss_mib "${pids[$p]}")"
		value "$row" "$p" "RSS: anonymous MiB" "$(rss_mib "${pids[$p]}" RssAnon)"
		value "$row" "$p" "RSS: file-backed MiB" "$(rss_mib "${pids[$p]}" RssFile)"
		value "$row" "$p" "data dir MiB" "$(du_mib "${dirs[$p]}/m0")"
	done
	for ((r = 1; r <= ROUNDS; r++)); do
		local order=(cairn etcd)
		if ((r % 2 == 0)); then
			order=(etcd cairn)
		fi
		for p in "${order[@]}"; do
			settle_quiet "${pids[cairn]},${pids[etcd]}"
			pid=${pids[$p]}
			since=$(date +%s%N)
			kill -KILL "$pid"
			wait "$pid" 2>/dev/null || true
			forget "$pid"
			start_member "$p" 0
			pids[$p]=$member_pid
			ms=$(first_get "$p" "$since" "$key")
			log "$row: $p answered a GET ${ms} ms after kill -9"
			value "$row" "$p" "kill -9 to first GET ms" "$ms"
		done
	done
	sleep "$SETTLE"
	for p in cairn etcd; do
		value "$row" "$p" "RSS after restart MiB" "$(rss_mib "${pids[$p]}")"
		value "$row" "$p" "RSS after restart: anonymous MiB" "$(rss_mib "${pids[$p]}" RssAnon)"
		value "$row" "$p" "RSS after restart: file-backed MiB" "$(rss_mib "${pids[$p]}" RssFile)"
		value "$row" "$p" "data dir after restart MiB" "$(du_mib "${dirs[$p]}/m0")"
	done
	stop_all
}

# --- the run --------------------------------------------------------------------------

started=$(date -u '+%Y-%m-%d %H:%M UTC')
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

if [[ " $PHASES " == *" 3m "* ]]; then
	start_cluster cairn 3 c3
	start_cluster etcd 3 c3
	alternate put-64-3m put "$CLIENTS"
	alternate get-64-3m get "$CLIENTS"
	alternate put-1-3m put 1
	stop_all
fi
if [[ " $PHASES " == *" 1m "* ]]; then
	start_cluster cairn 1 c1
	start_cluster etcd 1 c1
	alternate put-64-1m put "$CLIENTS"
	stop_all
fi
if [[ " $PHASES " == *" load "* ]]; then
	load_and_restart load "$LOAD_KEYS"
fi
if [[ $BIG == 1 || " $PHASES " == *" big "* ]]; then
	load_and_restart big "$BIG_KEYS"
fi
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the report -------------------------------------------------------------------------

echo "## Cairn vs etcd: bench/compare.sh"
echo
echo "- date: $started"
echo "- machine: $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) memory, Linux $(uname -r)"
echo "- load average (1, 5, 15 min): $load_start at the start, $load_end at the end"
echo "- command: DURATION=$DURATION ROUNDS=$ROUNDS CLIENTS=$CLIENTS KEYS=$KEYS VALUE=$VALUE LOAD_KEYS=$LOAD_KEYS BIG=$BIG PHASES=\"$PHASES\" bash bench/compare.sh"
echo "- Cairn $(cd "$root" && git describe --always --dirty 2>/dev/null || echo '?') ($(go version | cut -d' ' -f3)); $("$ETCD" --version | head -1) (--enable-v2)"
echo "- client: $client; $DURATION measured per run after 1 s of warmup; server CPU is every member's, from /proc"
echo
summary report "$results" "$(printf '{"load_keys":%d,"big_keys":%d,"value":%d}' "$LOAD_KEYS" "$BIG_KEYS" "$VALUE")"
echo
echo "Server CPU per operation is the CPU time of every member over the measured window divided by"
echo "the operations completed in it. Ops per fsync are the operations per WAL fsync of one member"
echo "(group commit), fsync ms the mean time of one, from each product's /metrics; other CPU is what"
echo "the rest of the machine used meanwhile (its noise). Throughput, CPU and latency ratios are of"
echo "the means over the rounds; memory, disk and restart ratios of the medians."
echo
echo "Targets are issue 15's aims: put throughput ≥ 2× etcd's (3 members and 1) at ≤ ½ its CPU per"
echo "put (3 members) and a p99 no worse; linearizable get throughput ≥ etcd's stale get at no more"
echo "CPU per get; put p50 with 1 client no worse; no maximum above 10× p99; after 100,000 keys RSS"
echo "≤ 100 MiB (and ⅓ of etcd's), data directory ≤ 2× the data, kill -9 to first answer ≤ ½ etcd's;"
echo "after 1,000,000 keys (BIG=1) first answer ≤ 3 s."
