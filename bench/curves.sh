#!/usr/bin/env bash
# Cost as the work grows (issue 17, point 4): the library-level curves.
#
#   bench/curves.sh
#
# Runs bench-scale's three subcommands at full size and writes one TSV each to
# target/bench-scale/, then draws them as PNGs there (bench/plot.py, matplotlib in a venv at
# target/bench-venv, from bench/requirements.txt):
#
#   keys-sqlite.tsv, keys-postgres.tsv   first-seen API-key lookups, 10 k to 10 M keys
#   sessions-redis.tsv, sessions-postgres.tsv   first-seen access tokens, 10 k to 1 M sessions
#   zipf.tsv                             caches under Zipf(s), 10× more keys than they hold
#
# Environment (defaults): KEY_SIZES (10000,100000,1000000,10000000), SESSION_SIZES
# (10000,100000,1000000), LOOKUPS (20000), CONCURRENCY (32), ZIPF_S ("0.8 1.0 1.2"),
# ZIPF_CACHE (100000), ZIPF_DISTINCT (1000000), ZIPF_REQUESTS (2000000), PG_URL
# (postgres://postgres@127.0.0.1:5432/bench_scale; the database must exist and is emptied),
# REDIS_URL (redis://127.0.0.1:6379/9; that database is flushed before and after), CURVES
# ("keys-sqlite keys-postgres sessions-redis sessions-postgres zipf"), PLOT (1), OUT
# (target/bench-scale), BENCH_SCALE_BIN (default: build it with cargo, release). The PostgreSQL
# database is created when missing. scripts/bench-smoke runs all of it at tiny sizes.
# The 10 M-key tables take ~5 GB on disk each (SQLite file, PostgreSQL database).
set -euo pipefail

KEY_SIZES=${KEY_SIZES:-10000,100000,1000000,10000000}
SESSION_SIZES=${SESSION_SIZES:-10000,100000,1000000}
LOOKUPS=${LOOKUPS:-20000}
CONCURRENCY=${CONCURRENCY:-32}
ZIPF_S=${ZIPF_S:-0.8 1.0 1.2}
ZIPF_CACHE=${ZIPF_CACHE:-100000}
ZIPF_DISTINCT=${ZIPF_DISTINCT:-1000000}
ZIPF_REQUESTS=${ZIPF_REQUESTS:-2000000}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/bench_scale}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/9}
CURVES=${CURVES:-keys-sqlite keys-postgres sessions-redis sessions-postgres zipf}
PLOT=${PLOT:-1}

cd "$(dirname "$0")/.."
OUT=${OUT:-target/bench-scale}
mkdir -p "$OUT"
TARGET=${CARGO_TARGET_DIR:-target}
if [ -n "${BENCH_SCALE_BIN:-}" ]; then
    BIN=$BENCH_SCALE_BIN
else
    cargo build --release -p portcullis-bench --bin bench-scale
    BIN=$TARGET/release/bench-scale
fi
case " $CURVES " in
    *-postgres*)
        # The database named by PG_URL, created when missing.
        db=${PG_URL##*/}
        psql "${PG_URL%/*}/postgres" -qtAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 ||
            psql "${PG_URL%/*}/postgres" -qc "CREATE DATABASE $db" ;;
esac

{
    echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ' (dirty)')"
    echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
} >"$OUT/run.txt"
cat "$OUT/run.txt" >&2

# growth SUBCOMMAND STORE URL SIZES: one growth curve into $OUT/SUBCOMMAND-STORE.tsv.
growth() {
    "$BIN" "$1" --store "$2" --url "$3" --sizes "$4" --lookups "$LOOKUPS" \
        --concurrency "$CONCURRENCY" --out "$OUT/$1-$2.tsv"
}

for curve in $CURVES; do
    case $curve in
        keys-sqlite) growth keys sqlite "sqlite://$OUT/keys.db?mode=rwc" "$KEY_SIZES" ;;
        keys-postgres) growth keys postgres "$PG_URL" "$KEY_SIZES" ;;
        sessions-redis) growth sessions redis "$REDIS_URL" "$SESSION_SIZES" ;;
        sessions-postgres) growth sessions postgres "$PG_URL" "$SESSION_SIZES" ;;
        zipf)
            # One process per exponent, so that each RSS starts from the same state.
            : >"$OUT/zipf.tsv"
            header=
            for s in $ZIPF_S; do
                "$BIN" zipf --cache "$ZIPF_CACHE" --distinct "$ZIPF_DISTINCT" \
                    --requests "$ZIPF_REQUESTS" --s "$s" $header >>"$OUT/zipf.tsv"
                header=--no-header
            done ;;
        *) echo "curves.sh: unknown curve $curve" >&2; exit 1 ;;
    esac
done

if [ "$PLOT" = 1 ]; then
    VENV=target/bench-venv
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet -r bench/requirements.txt
    "$VENV/bin/python" bench/plot.py "$OUT"
fi
ls -l "$OUT" >&2
