#!/usr/bin/env bash
# Cargo runner for x86_64-pc-windows-gnu test binaries (unit, integration
# and doctests) under Wine, used by `.ci/run`'s windows step.
#
# A binary that exits non-zero having printed nothing at all never reached
# its test harness (which always prints "running N tests" first): that is a
# Wine start-up failure, seen once in a CI run under load (exit status 1, no
# output) and not reproduced in 55 runs since. Such a run is reported on
# stderr and retried once; any run that printed something keeps its exit
# status, so a failing test is never retried.
#
# Each binary gets EBBTIDE_WINE_TIMEOUT seconds (default 900; the longest
# takes under 60 here): a hang is reported as a failure naming the binary,
# and the rest of the suite still runs, instead of the hang using up the
# whole gate's time.
set -uo pipefail
limit=${EBBTIDE_WINE_TIMEOUT:-900}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for attempt in 1 2; do
    timeout -k 10 "$limit" wine "$@" | tee "$out"
    rc=${PIPESTATUS[0]}
    if ((rc == 124 || rc == 137)); then
        echo "wine-run: $(basename "$1") did not finish in $limit s (a hang): killed" >&2
        exit "$rc"
    fi
    if ((rc == 0)) || [[ -s "$out" ]] || ((attempt == 2)); then
        exit "$rc"
    fi
    echo "wine-run: $(basename "$1") exited $rc before printing anything (Wine start-up failure, not a test result); retrying once" >&2
done
