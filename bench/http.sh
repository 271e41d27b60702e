#!/usr/bin/env bash
# The HTTP load comparison of issues 6 and 17: axum 0.8 `GET /hello` with no auth, tower-http's
# static bearer compare (the do-nothing reference), Portcullis (JWT and API key) and its peers
# (axum-login with a logged-in session cookie, jsonwebtoken, jwt-authorizer), each a one-thread
# `bench-server` pinned to one core, loaded in turn by `wrk -t1 -c32` pinned to the other, all
# servers up at once, the order rotated every round.
#
#   ROUNDS=11 bench/http.sh
#
# Environment (defaults): ROUNDS (11), DURATION seconds per run (5), WARMUP seconds per variant
# before round 1 (1), CONNECTIONS (32), SERVER_CORE (0), LOAD_CORE (1), BASE_PORT (18080),
# VARIANTS ("none tower-http portcullis-jwt portcullis-api-key axum-login jsonwebtoken
# jwt-authorizer"; `none` must be among them; `portcullis-jwt-metrics` and `portcullis-api-key-metrics` record every
# decision into a Prometheus recorder, as the sample server does with PORTCULLIS_METRICS_BIND), QUIET_WAIT (20: seconds to wait before each run for both cores to be idle),
# OTHER_MAX (5) and RETRIES (2): a run during which other processes used more than OTHER_MAX % of
# a core is run again, up to RETRIES times, and the last try is kept with its figure;
# BENCH_SERVER_BIN (default: build bench-server with cargo, release), BENCH_MOUNT (layer: each
# auth layer through `Router::layer`; wrap: each wraps the whole router, see bench-server).
# Loopback only; every step is bounded in time; it stops by itself.
#
# Prints the machine, the commit, then a markdown table: req/s median (min–max), p50 and p99
# latency (medians over rounds), server CPU per request (utime+stime from /proc/PID/stat,
# before/after each run, ÷ requests) median (min–max), and, paired within each round, the
# ratio of req/s to `none` and the extra CPU µs per request over `none`. Raw per-run numbers
# are kept in target/bench-http/.
set -euo pipefail

ROUNDS=${ROUNDS:-11}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
CONNECTIONS=${CONNECTIONS:-32}
SERVER_CORE=${SERVER_CORE:-0}
LOAD_CORE=${LOAD_CORE:-1}
BASE_PORT=${BASE_PORT:-18080}
QUIET_WAIT=${QUIET_WAIT:-20}
OTHER_MAX=${OTHER_MAX:-5}
RETRIES=${RETRIES:-2}
read -r -a VARIANTS <<<"${VARIANTS:-none tower-http portcullis-jwt portcullis-api-key axum-login jsonwebtoken jwt-authorizer}"

cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

say() { printf '%s\n' "$*" >&2; }
die() { say "http.sh: $*"; exit 1; }

case " ${VARIANTS[*]} " in *" none "*) ;; *) die "VARIANTS must include none (the baseline)" ;; esac

# ---- tools ----
need_apt wrk
for tool in wrk taskset curl awk cargo; do
    command -v "$tool" >/dev/null || die "$tool is required"
done
[ "$(nproc)" -ge 2 ] || say "warning: fewer than 2 cores; server and load tool will share one"

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [ -n "${BENCH_SERVER_BIN:-}" ]; then
    BIN=$BENCH_SERVER_BIN # e.g. a debug build, for scripts/bench-smoke
else
    say "building bench-server (release)…"
    cargo build --release -q -p portcullis-bench --bin bench-server
    BIN=$TARGET_DIR/release/bench-server
fi
[ -x "$BIN" ] || die "no $BIN"

WORK=$(mktemp -d)
declare -A PID PORT HEADER
cleanup() {
    for v in "${!PID[@]}"; do
        kill "${PID[$v]}" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the machine ----
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo " (working tree modified)" || true)
echo "# bench/http.sh"
echo
echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "- commit: $commit$dirty"
echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(uname -sr)"
echo "- rustc: $(rustc --version 2>/dev/null || echo unknown); wrk: $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}')"
echo "- method: server on core $SERVER_CORE (taskset, one-thread tokio), wrk -t1 -c$CONNECTIONS -d${DURATION}s --latency on core $LOAD_CORE, $ROUNDS rounds, order rotated each round; each run waits up to ${QUIET_WAIT}s for idle cores and is retried (up to $RETRIES times) if other processes took more than ${OTHER_MAX}% of a core"
echo "- mount: BENCH_MOUNT=${BENCH_MOUNT:-layer} (layer: Router::layer; wrap: the layer wraps the router)"
echo "- load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- servers ----
port=$BASE_PORT
for v in "${VARIANTS[@]}"; do
    PORT[$v]=$port
    taskset -c "$SERVER_CORE" "$BIN" --variant "$v" --bind "127.0.0.1:$port" \
        >"$WORK/$v.out" 2>"$WORK/$v.err" &
    PID[$v]=$!
    port=$((port + 1))
done
for v in "${VARIANTS[@]}"; do
    wait_listening "$v" "${PID[$v]}" "$WORK/$v.out" "$WORK/$v.err" 10
    HEADER[$v]=$(credential_header "$WORK/$v.out")
done

# ---- every variant's auth works before it is loaded ----
status() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"; }
tamper() { # the credential with its last character changed (a cookie's: its value's last)
    local h=$1 last=${1: -1}
    if [ "$last" = A ]; then echo "${h%?}B"; else echo "${h%?}A"; fi
}
for v in "${VARIANTS[@]}"; do
    url="http://127.0.0.1:${PORT[$v]}/hello"
    if [ -z "${HEADER[$v]}" ]; then
        [ "$(status "$url")" = 200 ] || die "$v: GET /hello is not 200"
    else
        [ "$(status "$url")" = 401 ] || die "$v: no credential is not 401"
        [ "$(status -H "$(tamper "${HEADER[$v]}")" "$url")" = 401 ] || die "$v: a tampered credential is not 401"
        [ "$(status -H "${HEADER[$v]}" "$url")" = 200 ] || die "$v: the credential is not 200"
    fi
    with=()
    [ -z "${HEADER[$v]}" ] || with=(-H "${HEADER[$v]}")
    [ "$(curl -s --max-time 5 "${with[@]}" "$url")" = hello ] || die "$v: body is not hello"
done
say "auth checked: none → 200; others → 401 without, 401 tampered, 200 with credential"

# ---- load ----
ticks() { # utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat)
    sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}
core_busy() { # busy ticks of one core (all but idle and iowait), from /proc/stat
    awk -v c="cpu$1" '$1 == c {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat
}
HZ=$(getconf CLK_TCK)
load() { # variant seconds outfile
    local v=$1 secs=$2 out=$3
    local args=(-t1 "-c$CONNECTIONS" "-d${secs}s" --latency)
    [ -z "${HEADER[$v]}" ] || args+=(-H "${HEADER[$v]}")
    timeout $((secs + 30)) taskset -c "$LOAD_CORE" wrk "${args[@]}" "http://127.0.0.1:${PORT[$v]}/hello" >"$out"
}

if [ "$WARMUP" -gt 0 ]; then
    say "warming up ${WARMUP}s each…"
    for v in "${VARIANTS[@]}"; do load "$v" "$WARMUP" "$WORK/warmup.txt"; done
fi

all_busy() { # busy ticks of the two cores in use
    echo $(($(core_busy "$SERVER_CORE") + $(core_busy "$LOAD_CORE")))
}
wait_quiet() { # up to QUIET_WAIT s for 2 s in a row with < 5% of a core busy on both cores
    local end=$((SECONDS + QUIET_WAIT)) calm=0 a b
    while [ "$SECONDS" -lt "$end" ] && [ "$calm" -lt 2 ]; do
        a=$(all_busy)
        sleep 1
        b=$(all_busy)
        if [ $((b - a)) -lt $((HZ / 20 + 1)) ]; then calm=$((calm + 1)); else calm=0; fi
    done
}
measure() { # round variant: one run, retried while other processes took > OTHER_MAX % of a core
    local r=$1 v=$2 try=0 out before after busy0 busy1 t0 t1 wrk_ticks
    local requests rps p50 p99 non2xx errors cpu other
    while :; do
        wait_quiet
        out=$WORK/r$r-$v-$try.txt
        before=$(ticks "${PID[$v]}")
        busy0=$(all_busy)
        t0=$(date +%s%N)
        wrk_ticks=$( { TIMEFORMAT='%U %S'; time load "$v" "$DURATION" "$out"; } 2>&1 |
            awk -v hz="$HZ" '{printf "%d", ($1 + $2) * hz}')
        t1=$(date +%s%N)
        after=$(ticks "${PID[$v]}")
        busy1=$(all_busy)
        requests=$(awk '/requests in/ {print $1}' "$out")
        [ -n "$requests" ] && [ "$requests" -gt 0 ] || die "$v: wrk reported no requests: $(cat "$out")"
        # CPU of the two cores used by anything but this server and wrk, in % of one core.
        other=$(awk -v c="$((busy1 - busy0))" -v s="$((after - before))" -v w="$wrk_ticks" \
            -v hz="$HZ" -v ns="$((t1 - t0))" \
            'BEGIN { f = (c - s - w) / hz / (ns / 1e9) * 100; printf "%.1f", (f < 0 ? 0 : f) }')
        if awk -v o="$other" -v m="$OTHER_MAX" 'BEGIN { exit !(o <= m) }' || [ "$try" -ge "$RETRIES" ]; then
            break
        fi
        try=$((try + 1))
        say "  $v: other processes took ${other}% of a core; again ($try/$RETRIES)"
    done
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    p50=$(to_us "$(awk '$1 == "50%" {print $2}' "$out")")
    p99=$(to_us "$(awk '$1 == "99%" {print $2}' "$out")")
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$out")
    errors=$(awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}' "$out")
    cpu=$(awk -v a="$before" -v b="$after" -v hz="$HZ" -v n="$requests" \
        'BEGIN { printf "%.3f", (b - a) / hz * 1e6 / n }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$v" "$rps" "$p50" "$p99" "$cpu" \
        "$requests" "${non2xx:-0}" "${errors:-0}" "$other" >>"$RESULTS"
    say "  $v: $rps req/s, p50 ${p50}µs, p99 ${p99}µs, ${cpu} µs CPU/req, other processes ${other}%"
}

RESULTS_DIR=$TARGET_DIR/bench-http
mkdir -p "$RESULTS_DIR"
RESULTS=$RESULTS_DIR/results-$(date -u +%Y%m%dT%H%M%SZ).tsv
printf 'round\tvariant\treq_per_s\tp50_us\tp99_us\tcpu_us_per_req\trequests\tnon_2xx\tsocket_errors\tother_load_pct\n' >"$RESULTS"
n=${#VARIANTS[@]}
for r in $(seq "$ROUNDS"); do
    order=()
    for i in $(seq 0 $((n - 1))); do order+=("${VARIANTS[$(((i + r - 1) % n))]}"); done
    say "round $r/$ROUNDS: ${order[*]}"
    for v in "${order[@]}"; do
        measure "$r" "$v"
    done
done
echo "- load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- raw results: ${RESULTS#"$ROOT"/}"
echo

# ---- the table ----
# Ratios and extra CPU are paired within a round (each variant's run against `none`'s run of the
# same round), then summarised over rounds.
awk -F'\t' -v order="${VARIANTS[*]}" -v omax="$OTHER_MAX" "$AWK_MEDIAN"'
NR > 1 {
    rps[$2, $1] = $3; p50[$2, $1] = $4; p99[$2, $1] = $5; cpu[$2, $1] = $6
    bad[$2] += $8 + $9; rounds[$1] = 1
    runs++; fl[runs] = $10; if ($10 > omax) busy++
}
END {
    nr = 0; for (r in rounds) nr++
    print "| variant | req/s median (min–max) | p50 µs | p99 µs | server CPU µs/req median (min–max) | req/s ÷ none median (min–max) | extra CPU µs/req over none median (min–max) |"
    print "| --- | --- | --- | --- | --- | --- | --- |"
    nv = split(order, vs, " ")
    for (i = 1; i <= nv; i++) {
        v = vs[i]
        for (r = 1; r <= nr; r++) { a[r] = rps[v, r]; b[r] = p50[v, r]; c[r] = p99[v, r]; d[r] = cpu[v, r]
            q[r] = rps[v, r] / rps["none", r]; e[r] = cpu[v, r] - cpu["none", r] }
        m_rps = med(a, nr); l_rps = lo; h_rps = hi
        m_p50 = med(b, nr); m_p99 = med(c, nr)
        m_cpu = med(d, nr); l_cpu = lo; h_cpu = hi
        m_q = med(q, nr); l_q = lo; h_q = hi
        m_e = med(e, nr); l_e = lo; h_e = hi
        printf "| %s%s | %.0f (%.0f–%.0f) | %.0f | %.0f | %.2f (%.2f–%.2f) | %.3f (%.3f–%.3f) | %+.2f (%+.2f–%+.2f) |\n",
            v, (bad[v] > 0 ? " ⚠ " bad[v] " non-2xx/errors" : ""), m_rps, l_rps, h_rps, m_p50, m_p99,
            m_cpu, l_cpu, h_cpu, m_q, l_q, h_q, m_e, l_e, h_e
    }
    m_fl = med(fl, runs)
    printf "\nOther processes on the two cores during the runs kept: median %.1f%%, max %.1f%% of a core; %d of %d runs above %s%%.\n",
        m_fl, hi, busy, runs, omax
}' "$RESULTS"
