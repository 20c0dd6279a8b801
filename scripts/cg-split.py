#!/usr/bin/env python3
"""Split a callgrind profile's self cost (Ir) by origin.

    cg-split.py OUT [--top K]                 totals of one profile
    cg-split.py OUT_N OUT_2N --ops D [--top K]  (OUT_2N - OUT_N) / D per op
    ... [--group G]   top functions: only the cost of group G (by source)

Two groupings of the same self cost (what `callgrind_annotate --inclusive=no`
reports per function), side by side:

- by symbol: the crate that names the function (the first path segment of
  the demangled name, through `<..>`, `drop_in_place<..>` and `&`); code of
  a dependency that was inlined into a caller counts for the caller;
- by source: the crate of the source file each instruction came from (the
  `fi=`/`fe=` records of inlined code), so inlined async-task or
  concurrent-queue code counts for its own crate (inlined core/alloc/std
  helpers still count for their caller's crate). Needs debug line info
  (the bench profile has `debug = 1`).

Groups: async-task, concurrent-queue, ebbtide, async-executor, slab (the task
set of async-executor and ebbtide), async-io
(+polling, parking), futures-lite, channels (async-channel, event-listener,
tokio::sync), tokio (its runtime), std (core/alloc/std), malloc (the
allocator, including Rust's alloc shims), libc (other libc: futex, syscall
wrappers, locks), probe (the bench's own code), other.

With two profiles, the per-op figures of each group and the top functions
by per-op self cost are printed; start-up and shutdown, the same in both
runs, cancel out.
"""
import re
import sys
from collections import defaultdict

MALLOC = re.compile(
    r"^(malloc|free|cfree|realloc|calloc|_int_malloc|_int_free\w*|_int_realloc|"
    r"malloc_consolidate|unlink_chunk.*|tcache\w*|__libc_malloc|__libc_free|"
    r"__libc_realloc|__libc_calloc|__GI___libc_\w*|sysmalloc|__rust_alloc|"
    r"__rust_dealloc|__rust_realloc|__rdl_\w*|__rg_\w*|alloc_perturb|"
    r"checked_request2size|__malloc_\w*|arena_get2|_mid_memalign|"
    r"__memalign\w*|posix_memalign|aligned_alloc)$|^alloc::alloc::|^__rustc::"
)

CRATE_GROUP = {
    "async_task": "async-task",
    "concurrent_queue": "concurrent-queue",
    "ebbtide": "ebbtide",
    "async_executor": "async-executor",
    "async_io": "async-io",
    "polling": "async-io",
    "parking": "async-io",
    "futures_lite": "futures-lite",
    "async_channel": "channels",
    "event_listener": "channels",
    "event_listener_strategy": "channels",
    "slab": "slab",
    "tokio": "tokio",
    "core": "std",
    "alloc": "std",
    "std": "std",
    "sched_probe": "probe",
    "compare": "probe",
    "spawn_probe": "probe",
    "timers_probe": "probe",
}

GROUPS = [
    "async-task", "concurrent-queue", "ebbtide", "async-executor", "async-io",
    "futures-lite", "slab", "channels", "tokio", "std", "malloc", "libc", "probe",
    "other",
]


def crate_of_symbol(fn):
    s = fn.strip()
    while True:
        m = re.match(r"^(?:<|&|\(|mut |dyn |\*const |\*mut |unsafe |extern \"C\" )", s)
        if m:
            s = s[m.end():]
            continue
        # `<F as async_task::..::Schedule<M>>::schedule`: a generic
        # parameter's impl counts for the trait's crate.
        m = re.match(r"^[A-Z][A-Za-z0-9_]* as (.*)$", s)
        if m:
            s = m.group(1)
            continue
        m = re.match(r"^core::ptr::drop_in_place<(.*)>$", s)
        if m:
            s = m.group(1)
            continue
        break
    m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)::", s)
    return m.group(1) if m else None


def group_symbol(fn, ob):
    if MALLOC.search(fn):
        return "malloc"
    c = crate_of_symbol(fn)
    if c == "tokio" and "::sync::" in fn:
        return "channels"
    if c is not None:
        return CRATE_GROUP.get(c, "other")
    if "libc" in ob or "ld-linux" in ob or "vdso" in ob or "libpthread" in ob:
        return "libc"
    return "other"


def crate_of_file(path):
    m = re.search(r"/registry/src/[^/]+/([A-Za-z0-9_\-]+?)-\d+\.\d+[^/]*/", path)
    if m:
        return m.group(1).replace("-", "_")
    if "/rustc/" in path or "/library/" in path:
        return "std"
    if "/benches/" in path:
        return "sched_probe"
    if "/src/" in path and ("ebbtide" in path or "/wt-" in path or "/work/main" in path):
        return "ebbtide"
    return None


def group_source(path, fn, ob):
    if MALLOC.search(fn):
        return "malloc"
    c = crate_of_file(path)
    if c is None or c == "std":
        # core/alloc/std helpers (atomics, pointer ops) inlined into a
        # function count for that function's crate.
        return group_symbol(fn, ob)
    if c == "tokio" and "/sync/" in path:
        return "channels"
    return CRATE_GROUP.get(c, "other")


def parse(path):
    """Self Ir per (object, source file, function) of one callgrind file."""
    names = {"ob": {}, "fl": {}, "fn": {}}
    kind = {"ob": "ob", "cob": "ob", "fl": "fl", "fi": "fl", "fe": "fl",
            "cfi": "fl", "cfl": "fl", "fn": "fn", "cfn": "fn"}
    cost = defaultdict(int)
    cost_calls = defaultdict(int)
    npos = 1
    cfn = ""
    ob = fl = cur = fn = ""
    skip_next = False
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            c0 = line[0]
            if c0.isdigit() or c0 in "+-*":
                if skip_next:
                    skip_next = False
                    continue
                parts = line.split()
                if len(parts) > npos:
                    cost[(ob, cur, fn)] += int(parts[npos])
                continue
            key, _, val = line.partition("=")
            if key in kind:
                m = re.match(r"^\((\d+)\)(?: (.*))?$", val)
                if m:
                    table = names[kind[key]]
                    if m.group(2) is not None:
                        table[m.group(1)] = m.group(2)
                    val = table.get(m.group(1), "?")
                if key == "cfn":
                    cfn = val
                if key == "ob":
                    ob = val
                elif key == "fl":
                    fl = cur = val
                elif key in ("fi", "fe"):
                    cur = val
                elif key == "fn":
                    fn = val
                    cur = fl
            elif key == "calls":
                skip_next = True
                if cfn in ("malloc", "free", "realloc", "calloc", "posix_memalign"):
                    cost_calls[cfn] += int(val.split()[0])
            elif line.startswith("positions:"):
                npos = len(line.split()[1:])
    cost[("", "", "#calls")] = dict(cost_calls)
    return cost


def split(cost, only=None):
    by_sym, by_src, by_fn = defaultdict(int), defaultdict(int), defaultdict(int)
    calls = cost.pop(("", "", "#calls"), {})
    for (ob, fl, fn), ir in cost.items():
        by_sym[group_symbol(fn, ob)] += ir
        by_src[group_source(fl, fn, ob)] += ir
        if only is None or group_source(fl, fn, ob) == only:
            by_fn[fn] += ir
    return by_sym, by_src, by_fn, calls


def main(argv):
    top = 15
    ops = None
    only = None
    files = []
    i = 0
    while i < len(argv):
        if argv[i] == "--top":
            top = int(argv[i + 1])
            i += 2
        elif argv[i] == "--group":
            only = argv[i + 1]
            i += 2
        elif argv[i] == "--ops":
            ops = float(argv[i + 1])
            i += 2
        else:
            files.append(argv[i])
            i += 1
    if len(files) == 1:
        sym, src, fns, calls = split(parse(files[0]), only)
        div = ops or 1.0
    elif len(files) == 2 and ops:
        a, b = split(parse(files[0]), only), split(parse(files[1]), only)
        sym, src, fns, calls = (
            {k: y.get(k, 0) - x.get(k, 0) for k in set(x) | set(y)}
            for x, y in zip(a, b)
        )
        div = ops
    else:
        print(__doc__)
        return 2
    total = sum(sym.values())
    unit = "Ir/op" if div != 1.0 else "Ir"
    print(f"{'group':<18}{'by symbol':>12}{'by source':>12}   ({unit})")
    for g in GROUPS:
        s, r = sym.get(g, 0) / div, src.get(g, 0) / div
        if abs(s) >= 0.5 or abs(r) >= 0.5:
            print(f"{g:<18}{s:>12.1f}{r:>12.1f}")
    print(f"{'total':<18}{total / div:>12.1f}{sum(src.values()) / div:>12.1f}")
    print("allocator calls: " + ", ".join(
        f"{k} {calls.get(k, 0) / div:.2f}" for k in ("malloc", "posix_memalign", "free")))
    scope = f" (group {only}, by source)" if only else ""
    print(f"\ntop functions by self {unit}{scope}:")
    for fn, ir in sorted(fns.items(), key=lambda kv: -kv[1])[:top]:
        print(f"{ir / div:>10.1f}  {fn[:150]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
