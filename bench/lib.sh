# Shared by bench/http.sh, bench/server.sh and bench/instructions.sh (sourced, not run).
# shellcheck shell=bash

# A wrk latency (e.g. 412.00us, 1.02ms, 1.10s) in µs.
to_us() {
    awk -v x="$1" 'BEGIN {
        if (x ~ /us$/) { sub(/us$/, "", x); print x + 0 }
        else if (x ~ /ms$/) { sub(/ms$/, "", x); print x * 1000 }
        else if (x ~ /m$/) { sub(/m$/, "", x); print x * 60e6 }
        else if (x ~ /s$/) { sub(/s$/, "", x); print x * 1e6 }
        else print "nan" }'
}

# An awk function to put before a program: med(arr, k) is the median of arr[1..k], and sets the
# globals lo and hi to its minimum and maximum.
# shellcheck disable=SC2034 # used by the scripts that source this file
AWK_MEDIAN='
function med(arr, k,   tmp, i, j, t) {
    for (i = 1; i <= k; i++) tmp[i] = arr[i]
    for (i = 2; i <= k; i++) { t = tmp[i]; for (j = i - 1; j >= 1 && tmp[j] > t; j--) tmp[j + 1] = tmp[j]; tmp[j + 1] = t }
    lo = tmp[1]; hi = tmp[k]
    return (k % 2) ? tmp[(k + 1) / 2] : (tmp[k / 2] + tmp[k / 2 + 1]) / 2
}'

# Waits up to `seconds` for a server to print `listening on` to `out`; dies (the caller's `die`)
# with its `err` if it exits first or does not.
wait_listening() { # name pid out err seconds
    local name=$1 pid=$2 out=$3 err=$4 secs=$5 _
    for _ in $(seq $((secs * 10))); do
        grep -q '^listening on ' "$out" && return 0
        kill -0 "$pid" 2>/dev/null || die "$name exited: $(cat "$err")"
        sleep 0.1
    done
    grep -q '^listening on ' "$out" || die "$name did not start in $secs s"
}

# Installs the Debian packages of the named commands that are missing, when we may (root or
# sudo); the caller checks afterwards what it cannot do without.
need_apt() { # command…
    local missing=() p
    for p in "$@"; do command -v "$p" >/dev/null || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    say "installing ${missing[*]}…"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 ||
        { $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; } ||
        true
}

# The request header that carries the credential a bench-server printed to `out` (`token:`,
# `api_key:` or `cookie:`, before its `listening on` line); empty for `none`.
credential_header() { # out
    awk '/^token: / {print "Authorization: Bearer " $2} /^api_key: / {print "X-API-Key: " $2}
         /^cookie: / {print "Cookie: " $2}' "$1"
}
