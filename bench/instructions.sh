#!/usr/bin/env bash
# Instructions a request, per bench-server variant: the user-space instructions valgrind's
# callgrind counts while wrk loads `GET /hello`, divided by the requests served. Unlike req/s
# and CPU time, a count does not move with the neighbours of a shared VM, so two builds (or two
# variants) compare exactly in one run; the kernel's share of a request (the syscalls, most of
# a hello world's time) is not in it.
#
#   bench/instructions.sh                      # the default variants
#   VARIANTS="none portcullis-api-key" bench/instructions.sh
#   DIFF="none portcullis-api-key" bench/instructions.sh   # then: per function, what one adds
#
# Environment (defaults): VARIANTS ("none tower-http portcullis-api-key portcullis-jwt
# portcullis-api-key-metrics portcullis-jwt-metrics"), DURATION seconds of counted load per
# variant (8; 2 s of warm-up come first, not counted), CONNECTIONS (8), BASE_PORT (18280),
# BENCH_SERVER_BIN (default: build bench-server with cargo, release), OUT (target/bench-instr),
# BENCH_MOUNT (layer or wrap: how bench-server mounts each auth layer; printed to stderr).
# Prints a TSV: variant, requests, instructions a request, and that minus `none`'s (when `none`
# ran). DIFF="A B" also prints the 40 functions whose own instructions a request differ most
# between variants A and B (bench/instructions_diff.py, over callgrind_annotate). Loopback
# only; valgrind and wrk are installed from Debian when missing.
set -euo pipefail
export LC_ALL=C

VARIANTS=${VARIANTS:-none tower-http portcullis-api-key portcullis-jwt portcullis-api-key-metrics portcullis-jwt-metrics}
DURATION=${DURATION:-8}
CONNECTIONS=${CONNECTIONS:-8}
BASE_PORT=${BASE_PORT:-18280}

cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${OUT:-$ROOT/target/bench-instr}
say() { printf '%s\n' "$*" >&2; }
die() { say "instructions.sh: $*"; exit 1; }
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

need_apt valgrind wrk
for tool in valgrind callgrind_control wrk python3; do
    command -v "$tool" >/dev/null || die "$tool is required"
done

if [ -n "${BENCH_SERVER_BIN:-}" ]; then
    BIN=$BENCH_SERVER_BIN
else
    cargo build --release -q -p portcullis-bench --bin bench-server
    BIN=$ROOT/target/release/bench-server
fi

rm -rf "$OUT"
mkdir -p "$OUT"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

say "mount: BENCH_MOUNT=${BENCH_MOUNT:-layer}"
printf 'variant\trequests\tinstructions_per_request\tover_none\n'
port=$BASE_PORT
none=""
for v in $VARIANTS; do
    port=$((port + 1))
    valgrind --tool=callgrind --callgrind-out-file="$OUT/$v.%p" "$BIN" --variant "$v" \
        --bind "127.0.0.1:$port" >"$OUT/$v.out" 2>"$OUT/$v.err" &
    pid=$!
    PIDS+=("$pid")
    # Under valgrind a debug build takes seconds to start.
    wait_listening "$v" "$pid" "$OUT/$v.out" "$OUT/$v.err" 60
    header=$(credential_header "$OUT/$v.out")
    load() {
        timeout $(($1 + 30)) wrk -t1 -c"$CONNECTIONS" -d"$1"s ${header:+-H "$header"} \
            "http://127.0.0.1:$port/hello"
    }
    load 2 >/dev/null
    callgrind_control -z "$pid" >/dev/null 2>&1
    result=$(load "$DURATION")
    callgrind_control -d "$pid" >/dev/null 2>&1
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    if grep -q 'Non-2xx' <<<"$result"; then
        die "$v: non-2xx responses under load: $result"
    fi
    requests=$(awk '/requests in/ {print $1}' <<<"$result")
    mv "$OUT/$v.$pid.1" "$OUT/$v.counted" # the dump `-d` asked for
    total=$(awk '/^summary:/ {print $2}' "$OUT/$v.counted")
    per=$((total / requests))
    [ "$v" = none ] && none=$per
    printf '%s\t%s\t%s\t%s\n' "$v" "$requests" "$per" "${none:+$((per - none))}"
    echo "$requests" >"$OUT/$v.requests"
done

if [ -n "${DIFF:-}" ]; then
    read -r a b <<<"$DIFF"
    echo
    python3 bench/instructions_diff.py "$OUT/$a.counted" "$(cat "$OUT/$a.requests")" \
        "$OUT/$b.counted" "$(cat "$OUT/$b.requests")" 40
fi
