#!/usr/bin/env python3
"""Plots the ratios of a benchmark JSON file as an SVG bar chart.

Usage: scripts/plot-benchmarks.py RESULTS.json [MORE.json ...] [-o OUT.svg] [--title TEXT]

Each input is what a bench's `--json PATH` writes: [{"name", "ebbtide_ns",
PEER_ns...}], ns per iteration, message, read or request, lower is better.
The peers are `tokio_ns` and `smol_ns` (compare, echo: always both), and
`compio_ns` and `monoio_ns` (fileread, http: each only where that peer
ran). The chart shows ebbtide/peer per benchmark on a log scale, one bar
per peer the row has, each peer its own colour: bars left of 1.0 are where
ebbtide is faster. Rows without `ebbtide_ns` or without any peer are left
out. `-o` defaults to docs/benchmarks.svg; `--title` puts TEXT above the
chart. Standard library only, so it runs on a fresh machine.
"""
import json
import math
import sys
from xml.sax.saxutils import escape

# The peer keys, in the order of the bars in a row and of the legend.
PEERS = (
    ("tokio_ns", "tokio", "#1f77b4"),
    ("smol_ns", "smol", "#ff7f0e"),
    ("compio_ns", "compio", "#2ca02c"),
    ("monoio_ns", "monoio", "#d62728"),
)


def take_option(args, flag):
    """Removes `flag VALUE` from args and returns VALUE (None if absent)."""
    if flag not in args:
        return None
    i = args.index(flag)
    if i + 1 >= len(args):
        sys.exit(f"{flag} needs a value")
    value = args[i + 1]
    del args[i : i + 2]
    return value


def main():
    args = sys.argv[1:]
    out = take_option(args, "-o") or "docs/benchmarks.svg"
    title = take_option(args, "--title")
    if not args:
        sys.exit(__doc__.strip().splitlines()[2])
    rows = []
    for path in args:
        with open(path) as f:
            rows.extend(json.load(f))
    # Each kept row with the peers it has: [(row, [(key, label, colour)])].
    rows = [(r, [p for p in PEERS if r.get(p[0])]) for r in rows if r.get("ebbtide_ns")]
    rows = [(r, peers) for r, peers in rows if peers]
    if not rows:
        sys.exit("no rows with ebbtide_ns and at least one peer to plot")
    in_legend = [p for p in PEERS if any(p in peers for _, peers in rows)]

    lo, hi = 0.1, 10.0  # log scale bounds of the ratio axis
    left, bar_w, bar_step = 260, 480, 10
    head = 18 if title else 0  # room for the title line
    top = 50 + head
    # A row fits its bars (9 px each, 10 apart) and at least one label line.
    row_hs = [max(26, 6 + bar_step * len(peers)) for _, peers in rows]
    height = top + sum(row_hs) + 50
    width = left + bar_w + 120

    def x(ratio):
        r = min(max(ratio, lo), hi)
        return left + (math.log10(r) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * bar_w

    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    if title:
        svg.append(f'<text x="{left}" y="20" font-size="16" font-weight="bold">'
                   f"{escape(title)}</text>")
    svg.append(f'<text x="{left}" y="{20 + head}" font-size="14" font-weight="bold">'
               "ebbtide time / peer time (log scale; left of 1 = ebbtide faster)</text>")
    legend = []
    for k, (_, label, color) in enumerate(in_legend):
        lx = left + 90 * k
        legend.append(f'<rect x="{lx}" y="{28 + head}" width="10" height="10" fill="{color}"/>'
                      f'<text x="{lx + 14}" y="{37 + head}">vs {label}</text>')
    svg.extend(legend)
    for tick in (0.1, 0.25, 0.5, 1, 2, 4, 10):
        tx = x(tick)
        color = "#000" if tick == 1 else "#ccc"
        svg.append(f'<line x1="{tx:.1f}" y1="{top - 5}" x2="{tx:.1f}" '
                   f'y2="{height - 40}" stroke="{color}"/>')
        svg.append(f'<text x="{tx:.1f}" y="{height - 25}" text-anchor="middle">{tick}</text>')
    y = top
    for (r, peers), row_h in zip(rows, row_hs):
        label_y = y + 16 + (row_h - 26) // 2  # beside the middle of the bars
        svg.append(f'<text x="{left - 8}" y="{label_y}" text-anchor="end">'
                   f'{escape(str(r["name"]))}</text>')
        for j, (key, _, color) in enumerate(peers):
            ratio = r["ebbtide_ns"] / r[key]
            x0, x1 = sorted((x(1), x(ratio)))
            by = y + 3 + j * bar_step
            svg.append(f'<rect x="{x0:.1f}" y="{by}" width="{max(x1 - x0, 1):.1f}" '
                       f'height="9" fill="{color}"/>')
            svg.append(f'<text x="{max(x(ratio), x(1)) + 4:.1f}" y="{by + 8}" '
                       f'font-size="9">{ratio:.2f}</text>')
        y += row_h
    svg.append("</svg>")
    with open(out, "w") as f:
        f.write("\n".join(svg) + "\n")
    print(f"wrote {out} ({len(rows)} benchmarks)")


if __name__ == "__main__":
    main()
