#!/usr/bin/env bash
# Syscalls per TCP echo round trip: ebbtide (futures-io and owned-buffer
# APIs), tokio and smol, under `strace -f -c`.
#
# Usage: scripts/syscalls-per-echo.sh [CONNS [SIZE [SECS]]]   (default 64 100 2)
#
# Builds `benches/echo.rs` in release, then runs one cell of the echo bench
# per variant (`--only VARIANT --conns C --size M --secs S`: one runtime,
# no warm-up, clients and server on the same runtime) under
# `strace -f -c -o FILE`. The bench prints `round_trips=N`, every round
# trip the process made; the script prints the total syscalls counted by
# strace divided by N, and the top 8 syscalls by count with their counts
# per round trip. strace slows everything down, which does not matter
# here: counts are divided by the round trips made under strace. Setup
# (runtime start, C connects) is included and amortised over the run.
#
# Set VARIANTS (default "ebbtide ebbtide-owned tokio smol") to choose variants, and
# KEEP=DIR to keep the raw strace summaries.
set -euo pipefail

conns=${1:-64}
size=${2:-100}
secs=${3:-2}
variants=${VARIANTS:-"ebbtide ebbtide-owned tokio smol"}

cd "$(dirname "$0")/.."

if ! command -v strace >/dev/null; then
    echo "strace not found; installing it" >&2
    apt-get install -y strace >/dev/null 2>&1 ||
        { apt-get update >/dev/null && apt-get install -y strace >/dev/null; }
fi

# The bench executable: cargo prints "Executable benches/echo.rs (PATH)".
bin=$(cargo bench --bench echo --no-run 2>&1 |
    sed -n 's/.*Executable benches\/echo\.rs (\(.*\))$/\1/p' | tail -n 1)
if [[ -z "$bin" || ! -x "$bin" ]]; then
    echo "could not find the echo bench executable (cargo bench --bench echo --no-run)" >&2
    exit 1
fi

out=${KEEP:-$(mktemp -d)}
mkdir -p "$out"
[[ -n "${KEEP:-}" ]] || trap 'rm -rf "$out"' EXIT

echo "syscalls per echo round trip: $conns connections, $size B messages, $secs s per variant, under strace -f -c"
echo "(clients and server on the same runtime: one round trip = one client write + read and one server read + write)"
echo

declare -A per_rt
for v in $variants; do
    trace="$out/strace-$v.txt"
    log="$out/run-$v.txt"
    strace -f -c -o "$trace" "$bin" --only "$v" --conns "$conns" --size "$size" --secs "$secs" >"$log"
    rts=$(sed -n 's/^round_trips=//p' "$log")
    # strace -c rows: % time, seconds, usecs/call, calls, [errors,] syscall;
    # the "total" row has the total calls in column 4.
    calls=$(awk '$NF == "total" { print $4 }' "$trace")
    per_rt[$v]=$(awk -v c="$calls" -v r="$rts" 'BEGIN { printf "%.2f", c / r }')

    echo "== $v: $(head -n 1 "$log")"
    echo "   $calls syscalls / $rts round trips = ${per_rt[$v]} syscalls per round trip"
    echo "   top 8 by count:"
    printf '   %-20s %10s %10s %12s\n' syscall calls errors per-rt
    # Data rows start with a number; the errors column is blank when zero.
    awk '$1 ~ /^[0-9.]+$/ && $NF != "total" {
            errs = (NF == 6) ? $5 : 0
            print $4, errs, $NF
        }' "$trace" |
        sort -k1,1nr | head -n 8 |
        while read -r n errs name; do
            printf '   %-20s %10d %10d %12.2f\n' "$name" "$n" "$errs" \
                "$(awk -v n="$n" -v r="$rts" 'BEGIN { print n / r }')"
        done
    echo
done

echo "summary (syscalls per round trip):"
for v in $variants; do
    printf '  %-14s %s\n' "$v" "${per_rt[$v]}"
done
