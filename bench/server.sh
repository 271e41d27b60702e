#!/usr/bin/env bash
# The server-level curves of issue 17 (point 4): the sample server (`portcullis serve`, release
# build) on PostgreSQL + Redis, loaded over HTTP with wrk.
#
#   bench/server.sh              # the measurement (about 6 minutes)
#   SMOKE=1 bench/server.sh      # CI: 1-second runs, one instance, no haproxy, statuses only
#
# 1. The protected route `GET /api/v1/memories` (needs `memory:list`), with `X-API-Key` and
#    with `Authorization: Bearer` (an access token from a login right before each run), in three
#    setups: `direct` (one instance), `haproxy-1` (haproxy, round-robin, HTTP keep-alive, in
#    front of that one instance: the proxy's own cost) and `haproxy-2` (the same in front of two
#    instances sharing the database and Redis). ROUNDS rounds, the order of the six runs rotated
#    each round. Every response must be 200 (wrk's Non-2xx line) and no socket error: else it
#    stops with an error.
# 2. Login: `POST /auth/login` with a JSON body, as the contract's login (no cookie or CSRF for
#    the JSON flow), on one freshly restarted instance, each request as the next of USERS
#    distinct users (bench/login.lua), with LOGIN_CONNECTIONS connections in turn: req/s,
#    p50/p99, the status mix (200; 503 busy: no argon2 turn within 5 s; 429 throttled: more
#    than 10 password checks a minute for one email) and the instance's peak RSS (VmHWM) after
#    each. In full mode a last run uses only THROTTLE_USERS users, to show the throttle.
#
# Environment (defaults): DURATION seconds per run (10; smoke 1), CONNECTIONS for the route
# (32), ROUNDS (3; smoke 1), WARMUP seconds per setup (2; smoke 0), LOGIN_CONNECTIONS
# ("8 32 64"; smoke "8"), USERS (1024; smoke 16), THROTTLE_USERS (64; 0 skips that run),
# BASE_PORT (18180), PG_URL (postgres://postgres@127.0.0.1:5432), BENCH_DB (bench_server; smoke
# bench_server_smoke — dropped and created afresh, dropped again at the end unless KEEP_DB=1),
# REDIS_URL (redis://127.0.0.1:6379; keys under a prefix of this run's own, deleted at the end),
# PORTCULLIS_BIN (default: build it with cargo and use $CARGO_TARGET_DIR/release/portcullis),
# RESULTS_DIR ($CARGO_TARGET_DIR or target, then /bench-server).
#
# Needs wrk, curl, jq, psql, redis-cli and (full mode) haproxy; wrk and haproxy are installed
# from Debian if missing and we may. Loopback only; every process it starts is stopped at exit.
# Prints the machine, the commit and markdown tables; raw TSVs in RESULTS_DIR.
set -euo pipefail

SMOKE=${SMOKE:-0}
if [ "$SMOKE" = 1 ]; then
    DURATION=${DURATION:-1}
    ROUNDS=${ROUNDS:-1}
    WARMUP=${WARMUP:-0}
    LOGIN_CONNECTIONS=${LOGIN_CONNECTIONS:-8}
    USERS=${USERS:-16}
    THROTTLE_USERS=0
    BENCH_DB=${BENCH_DB:-bench_server_smoke}
else
    DURATION=${DURATION:-10}
    ROUNDS=${ROUNDS:-3}
    WARMUP=${WARMUP:-2}
    LOGIN_CONNECTIONS=${LOGIN_CONNECTIONS:-8 32 64}
    USERS=${USERS:-1024}
    THROTTLE_USERS=${THROTTLE_USERS:-64}
    BENCH_DB=${BENCH_DB:-bench_server}
fi
CONNECTIONS=${CONNECTIONS:-32}
BASE_PORT=${BASE_PORT:-18180}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
KEEP_DB=${KEEP_DB:-0}

cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
RESULTS_DIR=${RESULTS_DIR:-$TARGET_DIR/bench-server}

say() { printf '%s\n' "$*" >&2; }
die() {
    say "server.sh: $*"
    exit 1
}

case "$BENCH_DB" in *[!a-z0-9_]*) die "BENCH_DB must be lowercase letters, digits and _" ;; esac

# ---- tools ----
need_apt wrk
[ "$SMOKE" = 1 ] || need_apt haproxy
tools=(wrk curl jq psql redis-cli awk)
[ "$SMOKE" = 1 ] || tools+=(haproxy)
for tool in "${tools[@]}"; do
    command -v "$tool" >/dev/null || die "$tool is required"
done

if [ -n "${PORTCULLIS_BIN:-}" ]; then
    BIN=$PORTCULLIS_BIN
else
    say "building portcullis (release)…"
    cargo build --release -q -p portcullis-server
    BIN=$TARGET_DIR/release/portcullis
fi
[ -x "$BIN" ] || die "no $BIN"

WORK=$(mktemp -d)
PREFIX="bench-server-$$-$(date +%s):"
declare -A PID=()
cleanup() {
    local name
    for name in "${!PID[@]}"; do
        kill "${PID[$name]}" 2>/dev/null || true
    done
    for name in "${!PID[@]}"; do
        wait "${PID[$name]}" 2>/dev/null || true
    done
    redis-cli -u "$REDIS_URL" --scan --pattern "${PREFIX}*" 2>/dev/null |
        xargs -r -n 500 redis-cli -u "$REDIS_URL" DEL >/dev/null 2>&1 || true
    if [ "$KEEP_DB" != 1 ]; then
        psql -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the machine ----
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
dirty=""
if git status --porcelain --untracked-files=no 2>/dev/null | grep -q .; then dirty=" (working tree modified)"; fi
stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$RESULTS_DIR"
ROUTE_TSV=$RESULTS_DIR/route-$stamp.tsv
LOGIN_TSV=$RESULTS_DIR/login-$stamp.tsv
REPORT=$RESULTS_DIR/server-$stamp.md
exec > >(tee "$REPORT")
if [ "$SMOKE" = 1 ]; then echo "# bench/server.sh (SMOKE: statuses only, figures meaningless)"; else echo "# bench/server.sh"; fi
echo
echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "- commit: $commit$dirty"
echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(free -g | awk '/^Mem:/ {print $2 " GiB"}'), $(uname -sr)"
echo "- wrk: $(wrk -v 2>&1 | awk 'NR == 1 {print $2}'); haproxy: $(haproxy -v 2>/dev/null | awk 'NR == 1 {print $3}'); PostgreSQL: $(psql -tA "$PG_URL/postgres" -c 'show server_version' 2>/dev/null || echo '?'); Redis: $(redis-cli -u "$REDIS_URL" info server 2>/dev/null | tr -d '\r' | sed -n 's/^redis_version://p')"
echo "- load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- database ----
export PGOPTIONS="-c client_min_messages=warning"
psql -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null
psql -q "$PG_URL/postgres" -c "CREATE DATABASE $BENCH_DB" >/dev/null
export DATABASE_URL=$PG_URL/$BENCH_DB
export REDIS_URL
export PORTCULLIS_REDIS_PREFIX=$PREFIX
AUTH_JWT_SECRET_KEY=$("$BIN" secret generate)
AUTH_AGENT_JWT_SECRET=$("$BIN" secret generate)
export AUTH_JWT_SECRET_KEY AUTH_AGENT_JWT_SECRET
# Long enough for any run; a token run still logs in right before it.
export AUTH_JWT_ACCESS_TOKEN_EXPIRE_MINUTES=60
ADMIN_EMAIL=bench-admin@example.com
ADMIN_PASSWORD="bench admin password"
export PORTCULLIS_ADMIN_EMAIL=$ADMIN_EMAIL PORTCULLIS_ADMIN_PASSWORD=$ADMIN_PASSWORD
# The default level, plus the one debug line that says how many argon2 turns there are.
export RUST_LOG="info,portcullis_core::password=debug"
USER_PASSWORD="bench user password"

# ---- servers ----
start() { # name port
    local name=$1 port=$2
    (cd "$WORK" && exec "$BIN" serve --bind "127.0.0.1:$port") >"$WORK/$name.out" 2>"$WORK/$name.err" &
    PID[$name]=$!
    wait_listening "$name" "${PID[$name]}" "$WORK/$name.out" "$WORK/$name.err" 60
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$port/readyz")" = 200 ] ||
        die "$name: /readyz is not 200"
}
stop() { # name: SIGTERM (the audit log is flushed), then wait
    local name=$1
    kill "${PID[$name]}" 2>/dev/null || true
    wait "${PID[$name]}" 2>/dev/null || true
    unset "PID[$name]"
}

PORT_A=$BASE_PORT
PORT_B=$((BASE_PORT + 1))
PORT_P1=$((BASE_PORT + 10))
PORT_P2=$((BASE_PORT + 11))
A=http://127.0.0.1:$PORT_A

say "starting instance a on :$PORT_A (PostgreSQL $BENCH_DB, Redis prefix $PREFIX)…"
start a "$PORT_A"

status() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@"; }
login() { # base email password → access token
    curl -sf --max-time 30 "$1/auth/login" -H 'content-type: application/json' \
        -d "$(jq -nc --arg e "$2" --arg p "$3" '{email: $e, password: $p}')" | jq -er .access_token
}

# ---- bootstrap: the admin (from PORTCULLIS_ADMIN_*), a key with memory:list, the users ----
TOKEN=$(login "$A" "$ADMIN_EMAIL" "$ADMIN_PASSWORD") || die "admin login failed"
KEY=$(curl -sf --max-time 10 "$A/api-keys" -H "authorization: Bearer $TOKEN" \
    -H 'content-type: application/json' \
    -d '{"name":"bench-reader","permissions":["memory:list"]}' | jq -er .api_key) ||
    die "creating the API key failed"
[ "$(status "$A/api/v1/memories")" = 401 ] || die "no credential is not 401"
[ "$(status -H "X-API-Key: ${KEY}x" "$A/api/v1/memories")" = 401 ] || die "a wrong key is not 401"
[ "$(status -H "X-API-Key: $KEY" "$A/api/v1/memories")" = 200 ] || die "the key is not 200"
[ "$(status -H "Authorization: Bearer $TOKEN" "$A/api/v1/memories")" = 200 ] || die "the token is not 200"

say "creating $USERS users…"
seq 1 "$USERS" | xargs -P 4 -I{} curl -s -o /dev/null -w '%{http_code}\n' --max-time 60 \
    -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -d "{\"email\":\"bench-user-{}@example.com\",\"password\":\"$USER_PASSWORD\",\"role\":\"user\"}" \
    "$A/users" >"$WORK/users.codes"
created=$(grep -c '^201$' "$WORK/users.codes" || true)
[ "$created" = "$USERS" ] || die "created $created of $USERS users: $(sort "$WORK/users.codes" | uniq -c | tr '\n' ' ')"
[ -n "$(login "$A" bench-user-1@example.com "$USER_PASSWORD")" ] || die "a user's login failed"

turns=$(sed -n 's/.*concurrency=\([0-9]*\).*password hashing turns.*/\1/p; s/.*password hashing turns.*concurrency=\([0-9]*\).*/\1/p' "$WORK/a.err" | head -1)
echo "- argon2 turns (Passwords::concurrency(): available cores, capped by 256 MiB / 19 MiB = 13): ${turns:-not logged}"

# ---- the round-robin ----
SETUPS=(direct)
if [ "$SMOKE" != 1 ]; then
    say "starting instance b on :$PORT_B…"
    start b "$PORT_B"
    [ "$(status -H "X-API-Key: $KEY" "http://127.0.0.1:$PORT_B/api/v1/memories")" = 200 ] || die "b: the key is not 200"
    cat >"$WORK/haproxy.cfg" <<EOF
global
    maxconn 4096
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend one
    bind 127.0.0.1:$PORT_P1
    default_backend one
backend one
    balance roundrobin
    server a 127.0.0.1:$PORT_A
frontend two
    bind 127.0.0.1:$PORT_P2
    default_backend two
backend two
    balance roundrobin
    server a 127.0.0.1:$PORT_A
    server b 127.0.0.1:$PORT_B
EOF
    haproxy -c -q -f "$WORK/haproxy.cfg" || die "haproxy config refused"
    haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.out" 2>&1 &
    PID[haproxy]=$!
    for _ in $(seq 50); do
        [ "$(status -H "X-API-Key: $KEY" "http://127.0.0.1:$PORT_P2/api/v1/memories")" = 200 ] && break
        kill -0 "${PID[haproxy]}" 2>/dev/null || die "haproxy exited: $(cat "$WORK/haproxy.out")"
        sleep 0.1
    done
    [ "$(status -H "X-API-Key: $KEY" "http://127.0.0.1:$PORT_P1/api/v1/memories")" = 200 ] || die "haproxy-1: not 200"
    [ "$(status -H "X-API-Key: $KEY" "http://127.0.0.1:$PORT_P2/api/v1/memories")" = 200 ] || die "haproxy-2: not 200"
    SETUPS+=(haproxy-1 haproxy-2)
fi
declare -A URL=([direct]=$A/api/v1/memories
    [haproxy-1]=http://127.0.0.1:$PORT_P1/api/v1/memories
    [haproxy-2]=http://127.0.0.1:$PORT_P2/api/v1/memories)
declare -A SERVERS=([direct]="a" [haproxy-1]="a" [haproxy-2]="a b")

# ---- measuring ----
HZ=$(getconf CLK_TCK)
ticks() { # utime + stime of processes, in clock ticks
    local t=0 p
    for p in "$@"; do
        t=$((t + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
    done
    echo "$t"
}
wrk_run() { # out connections seconds url [wrk args…]
    local out=$1 c=$2 secs=$3 url=$4
    shift 4
    timeout $((secs + 60)) wrk -t1 "-c$c" "-d${secs}s" --latency --timeout 10s "$@" "$url" >"$out" ||
        die "wrk failed: $(cat "$out")"
}
field() { # wrk output → requests rps p50 p99 non2xx socket_errors
    local out=$1
    local requests rps p50 p99 non2xx errors
    requests=$(awk '/requests in/ {print $1}' "$out")
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    p50=$(to_us "$(awk '$1 == "50%" {print $2}' "$out")")
    p99=$(to_us "$(awk '$1 == "99%" {print $2}' "$out")")
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$out")
    errors=$(awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}' "$out")
    echo "${requests:-0} ${rps:-0} $p50 $p99 ${non2xx:-0} ${errors:-0}"
}

# ---- 1. the protected route ----
printf 'setup\tcredential\treq_per_s\tp50_us\tp99_us\tround\trequests\tnon_2xx\tsocket_errors\tserver_cpu_us_per_req\tproxy_cpu_us_per_req\n' >"$ROUTE_TSV"
if [ "$WARMUP" -gt 0 ]; then
    say "warming up ${WARMUP}s per setup…"
    for s in "${SETUPS[@]}"; do
        wrk_run "$WORK/warmup.txt" "$CONNECTIONS" "$WARMUP" "${URL[$s]}" -H "X-API-Key: $KEY"
    done
fi
RUNS=()
for s in "${SETUPS[@]}"; do for cred in api-key bearer; do RUNS+=("$s $cred"); done; done
n=${#RUNS[@]}
for r in $(seq "$ROUNDS"); do
    say "round $r/$ROUNDS"
    for i in $(seq 0 $((n - 1))); do
        read -r s cred <<<"${RUNS[$(((i + r - 1) % n))]}"
        if [ "$cred" = bearer ]; then
            TOKEN=$(login "$A" "$ADMIN_EMAIL" "$ADMIN_PASSWORD") || die "admin login failed"
            header="Authorization: Bearer $TOKEN"
        else
            header="X-API-Key: $KEY"
        fi
        pids=()
        for name in ${SERVERS[$s]}; do pids+=("${PID[$name]}"); done
        out=$WORK/r$r-$s-$cred.txt
        srv0=$(ticks "${pids[@]}")
        px0=0
        [ "$s" = direct ] || px0=$(ticks "${PID[haproxy]}")
        wrk_run "$out" "$CONNECTIONS" "$DURATION" "${URL[$s]}" -H "$header"
        srv1=$(ticks "${pids[@]}")
        px1=0
        [ "$s" = direct ] || px1=$(ticks "${PID[haproxy]}")
        read -r requests rps p50 p99 non2xx errors <<<"$(field "$out")"
        [ "$requests" -gt 0 ] || die "$s $cred: no requests: $(cat "$out")"
        [ "$non2xx" = 0 ] || die "$s $cred: $non2xx of $requests responses were not 2xx: $(cat "$out")"
        [ "$errors" = 0 ] || die "$s $cred: $errors socket errors: $(cat "$out")"
        srv_cpu=$(awk -v a="$srv0" -v b="$srv1" -v hz="$HZ" -v n="$requests" 'BEGIN { printf "%.1f", (b - a) / hz * 1e6 / n }')
        px_cpu=$(awk -v a="$px0" -v b="$px1" -v hz="$HZ" -v n="$requests" 'BEGIN { printf "%.1f", (b - a) / hz * 1e6 / n }')
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$cred" "$rps" "$p50" "$p99" "$r" \
            "$requests" "$non2xx" "$errors" "$srv_cpu" "$px_cpu" >>"$ROUTE_TSV"
        say "  $s $cred: $rps req/s, p50 ${p50}µs, p99 ${p99}µs, server CPU ${srv_cpu}µs/req, haproxy ${px_cpu}µs/req"
    done
done
echo "- load average after the route runs: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "## GET /api/v1/memories, wrk -t1 -c$CONNECTIONS -d${DURATION}s, $ROUNDS round(s), all 200"
echo
awk -F'\t' -v order="${SETUPS[*]}" "$AWK_MEDIAN"'
NR > 1 { k = $1 SUBSEP $2; c[k]++; rps[k, c[k]] = $3; p50[k, c[k]] = $4; p99[k, c[k]] = $5; sc[k, c[k]] = $10; pc[k, c[k]] = $11 }
END {
    print "| setup | credential | req/s median (min–max) | p50 µs | p99 µs median (min–max) | server CPU µs/req | haproxy CPU µs/req |"
    print "| --- | --- | --- | --- | --- | --- | --- |"
    ns = split(order, ss, " "); split("api-key bearer", cs, " ")
    for (i = 1; i <= ns; i++) for (j = 1; j <= 2; j++) {
        k = ss[i] SUBSEP cs[j]; m = c[k]
        for (r = 1; r <= m; r++) { a[r] = rps[k, r]; b[r] = p50[k, r]; d[r] = p99[k, r]; e[r] = sc[k, r]; f[r] = pc[k, r] }
        m_rps = med(a, m); l_rps = lo; h_rps = hi
        m_p50 = med(b, m); m_p99 = med(d, m); l_p99 = lo; h_p99 = hi
        m_sc = med(e, m); m_pc = med(f, m)
        printf "| %s | %s | %.0f (%.0f–%.0f) | %.0f | %.0f (%.0f–%.0f) | %.1f | %s |\n", ss[i], cs[j],
            m_rps, l_rps, h_rps, m_p50, m_p99, l_p99, h_p99, m_sc, (ss[i] == "direct" ? "—" : sprintf("%.1f", m_pc))
    }
}' "$ROUTE_TSV"
echo

# ---- 2. login ----
if [ -n "${PID[haproxy]:-}" ]; then stop haproxy; fi
if [ -n "${PID[b]:-}" ]; then stop b; fi
stop a
say "restarting instance a for the login runs…"
start a "$PORT_A"
hwm() { awk -v k="$2:" '$1 == k {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
echo "## POST /auth/login, wrk -t1 -d${DURATION}s --timeout 10s, one instance restarted before (VmHWM at idle: $(hwm "${PID[a]}" VmHWM) MiB)"
echo
printf 'connections\tusers\treq_per_s\tp50_us\tp99_us\trequests\ts200\ts401\ts429\ts503\tother\tsocket_errors\tvm_hwm_mib\tvm_rss_mib\n' >"$LOGIN_TSV"
login_run() { # connections users
    local c=$1 users=$2 out=$WORK/login-$1-$2.txt
    LOGIN_USERS=$users LOGIN_PASSWORD=$USER_PASSWORD wrk_run "$out" "$c" "$DURATION" "$A" -s "$ROOT/bench/login.lua"
    local requests rps p50 p99 non2xx errors
    read -r requests rps p50 p99 non2xx errors <<<"$(field "$out")"
    local s200 s401 s429 s503 other
    read -r s200 s401 s429 s503 other <<<"$(sed -n 's/^statuses 200=\([0-9]*\) 401=\([0-9]*\) 429=\([0-9]*\) 503=\([0-9]*\) other=\([0-9]*\)$/\1 \2 \3 \4 \5/p' "$out")"
    [ -n "$other" ] || die "login c=$c: no status line: $(cat "$out")"
    if [ "$s401" != 0 ] || [ "$other" != 0 ]; then
        die "login c=$c: $s401 × 401 and $other other statuses: $(cat "$out")"
    fi
    if [ "$SMOKE" = 1 ]; then
        if [ "$s200" -eq 0 ] || [ "$s200" != "$requests" ] || [ "$errors" != 0 ]; then
            die "login c=$c: not all 200 ($s200 of $requests, $errors socket errors): $(cat "$out")"
        fi
    fi
    local peak rss
    peak=$(hwm "${PID[a]}" VmHWM)
    rss=$(hwm "${PID[a]}" VmRSS)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$users" "$rps" "$p50" "$p99" \
        "$requests" "$s200" "$s401" "$s429" "$s503" "$other" "$errors" "$peak" "$rss" >>"$LOGIN_TSV"
    say "  login c=$c users=$users: $rps req/s, p50 ${p50}µs, p99 ${p99}µs; 200=$s200 429=$s429 503=$s503; socket errors $errors; VmHWM ${peak} MiB"
}
for c in $LOGIN_CONNECTIONS; do login_run "$c" "$USERS"; done
if [ "$THROTTLE_USERS" -gt 0 ]; then
    # Users 1..THROTTLE_USERS have taken at most a few checks of their window so far.
    login_run 32 "$THROTTLE_USERS"
fi
echo "| connections | users | req/s | p50 ms | p99 ms | 200 | 429 throttled | 503 busy | socket errors | VmHWM MiB after | VmRSS MiB after |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
awk -F'\t' 'NR > 1 { printf "| %s | %s | %.1f | %.0f | %.0f | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4 / 1000, $5 / 1000, $7, $9, $10, $12, $13, $14 }' "$LOGIN_TSV"
echo
echo "- load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- raw results: ${ROUTE_TSV#"$ROOT"/}, ${LOGIN_TSV#"$ROOT"/}; this report: ${REPORT#"$ROOT"/}"
stop a
say "done"
