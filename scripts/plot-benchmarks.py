#!/usr/bin/env python3
"""Plots the ratios of a benchmark JSON file as an SVG bar chart.

Usage: scripts/plot-benchmarks.py RESULTS.json [MORE.json ...] -o docs/benchmarks.svg

Each input is what `cargo bench --bench compare -- --json PATH` (or the
echo bench's `--json`) writes: [{"name", "ebbtide_ns", "tokio_ns",
"smol_ns"}], ns per iteration or per message, lower is better. The chart
shows ebbtide/tokio and ebbtide/smol per benchmark on a log scale: bars
left of 1.0 are where ebbtide is faster. Standard library only, so it runs
on a fresh machine.
"""
import json
import math
import sys


def main():
    args = sys.argv[1:]
    out = "docs/benchmarks.svg"
    if "-o" in args:
        i = args.index("-o")
        out = args[i + 1]
        del args[i : i + 2]
    rows = []
    for path in args:
        with open(path) as f:
            rows.extend(json.load(f))
    rows = [r for r in rows if r.get("ebbtide_ns") and r.get("tokio_ns") and r.get("smol_ns")]
    if not rows:
        sys.exit("no complete rows to plot")

    lo, hi = 0.1, 10.0  # log scale bounds of the ratio axis
    left, bar_w, row_h, top = 260, 480, 26, 50
    height = top + row_h * len(rows) + 50
    width = left + bar_w + 120

    def x(ratio):
        r = min(max(ratio, lo), hi)
        return left + (math.log10(r) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * bar_w

    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="20" font-size="14" font-weight="bold">'
        "ebbtide time / peer time (log scale; left of 1 = ebbtide faster)</text>",
        f'<rect x="{left}" y="28" width="10" height="10" fill="#1f77b4"/>'
        f'<text x="{left + 14}" y="37">vs tokio</text>',
        f'<rect x="{left + 90}" y="28" width="10" height="10" fill="#ff7f0e"/>'
        f'<text x="{left + 104}" y="37">vs smol</text>',
    ]
    for tick in (0.1, 0.25, 0.5, 1, 2, 4, 10):
        tx = x(tick)
        color = "#000" if tick == 1 else "#ccc"
        svg.append(f'<line x1="{tx:.1f}" y1="{top - 5}" x2="{tx:.1f}" '
                   f'y2="{height - 40}" stroke="{color}"/>')
        svg.append(f'<text x="{tx:.1f}" y="{height - 25}" text-anchor="middle">{tick}</text>')
    for i, r in enumerate(rows):
        y = top + i * row_h
        svg.append(f'<text x="{left - 8}" y="{y + 16}" text-anchor="end">{r["name"]}</text>')
        for j, (peer, color) in enumerate((("tokio_ns", "#1f77b4"), ("smol_ns", "#ff7f0e"))):
            ratio = r["ebbtide_ns"] / r[peer]
            x0, x1 = sorted((x(1), x(ratio)))
            by = y + 3 + j * 10
            svg.append(f'<rect x="{x0:.1f}" y="{by}" width="{max(x1 - x0, 1):.1f}" '
                       f'height="9" fill="{color}"/>')
            svg.append(f'<text x="{max(x(ratio), x(1)) + 4:.1f}" y="{by + 8}" '
                       f'font-size="9">{ratio:.2f}</text>')
    svg.append("</svg>")
    with open(out, "w") as f:
        f.write("\n".join(svg) + "\n")
    print(f"wrote {out} ({len(rows)} benchmarks)")


if __name__ == "__main__":
    main()
