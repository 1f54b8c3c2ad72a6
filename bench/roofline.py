"""Roofline plot of a kernel benchmark: arithmetic intensity vs GFLOP/s under this machine's roof.

    python bench/roofline.py                                   # bench/results/kernels.json
    python bench/roofline.py bench/results/kernels-quick.json --out /tmp/roofline

The roof is min(peak GFLOP/s, intensity x peak GB/s) with the peaks MEASURED on the machine
that ran the benchmark (SGEMM and copy, aecore.inspect.peak): a kernel under the slanted part is
limited by memory traffic, under the flat part by arithmetic. Each point is one op x tier
(filled) and PyTorch's time for the same op and the same counted FLOPs (hollow). Ops with no
FLOPs (a nearest-neighbour copy) have no intensity and are left out (listed in the caption).

Always writes an SVG (no dependency); also a PNG when matplotlib is installed.
"""

import argparse
import json
import math
import os
import sys
from xml.sax.saxutils import escape

try:
    from . import common
except ImportError:  # run as a script, or loaded by path: make `bench` importable
    sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from bench import common

TIER_COLORS = {"ref": "#7f7f7f", "numba": "#1f77b4", "cuda": "#2ca02c", "torch": "#ff7f0e"}
SHORT = {"forward": "fwd", "backward_input": "bwd-in", "backward_weight": "bwd-w", "backward": "bwd"}


def _label(record):
    op = record["op"]
    for suffix, short in SHORT.items():
        if op.endswith("_" + suffix):
            return f"{record['case']} {short}"
    return f"{record['case']} {op}"


def points(payload):
    """(label, tier, intensity, gflops) for every plottable result, and the names left out."""
    out, skipped = [], []
    for r in payload["results"]:
        if not r.get("flops") or not r.get("bytes") or not r.get("median_ms"):
            skipped.append(f"{r['case']} {r['op']}")
            continue
        intensity = r["flops"] / r["bytes"]
        out.append((_label(r), r["tier"], intensity, r["flops"] / (r["median_ms"] / 1e3) / 1e9))
        if r.get("torch_ms") and r["tier"] != "ref":
            key = (_label(r), "torch")
            if key not in {(p[0], p[1]) for p in out}:
                out.append((_label(r), "torch", intensity, r["flops"] / (r["torch_ms"] / 1e3) / 1e9))
    return out, sorted(set(skipped))


def _peak(payload):
    machine = payload["machine"]
    device = machine.get("device", "cpu")
    peak = (machine.get("peaks") or {}).get(device) or machine.get("peak") or {}
    return float(peak["gflops"]), float(peak["gbps"]), device


def _bounds(values, roof_values):
    lo = min(values + roof_values)
    hi = max(values + roof_values)
    return 10 ** math.floor(math.log10(lo)), 10 ** math.ceil(math.log10(hi))


def write_svg(payload, path, width=960, height=640):
    pts, skipped = points(payload)
    peak_gflops, peak_gbps, device = _peak(payload)
    ridge = peak_gflops / peak_gbps
    x_lo, x_hi = _bounds([p[2] for p in pts] or [ridge], [ridge / 10, ridge * 10])
    y_lo, y_hi = _bounds([p[3] for p in pts] or [peak_gflops], [peak_gflops, x_lo * peak_gbps])
    left, right, top, bottom = 80, 250, 50, 70
    plot_w, plot_h = width - left - right, height - top - bottom

    def sx(v):
        return left + plot_w * (math.log10(v) - math.log10(x_lo)) / (math.log10(x_hi) - math.log10(x_lo))

    def sy(v):
        v = min(max(v, y_lo), y_hi)
        return top + plot_h * (1 - (math.log10(v) - math.log10(y_lo)) / (math.log10(y_hi) - math.log10(y_lo)))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="11">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{left}" y="25" font-size="15">Roofline ({escape(device)}): peak '
             f'{peak_gflops:.0f} GFLOP/s (SGEMM), {peak_gbps:.1f} GB/s (copy)</text>']
    # grid and ticks at powers of ten
    for e in range(int(math.log10(x_lo)), int(math.log10(x_hi)) + 1):
        x = sx(10 ** e)
        parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_h}" stroke="#ddd"/>')
        parts.append(f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle">1e{e}</text>')
    for e in range(int(math.log10(y_lo)), int(math.log10(y_hi)) + 1):
        y = sy(10 ** e)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">1e{e}</text>')
    parts.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="black"/>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 25}" text-anchor="middle">'
                 'arithmetic intensity (FLOP / byte)</text>')
    parts.append(f'<text x="20" y="{top + plot_h / 2}" text-anchor="middle" '
                 f'transform="rotate(-90 20 {top + plot_h / 2})">GFLOP/s</text>')
    # the roof
    roof = [(x, min(peak_gflops, x * peak_gbps)) for x in
            [x_lo] + ([ridge] if x_lo < ridge < x_hi else []) + [x_hi]]
    path_d = " ".join(f"{'M' if i == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for i, (x, y) in enumerate(roof))
    parts.append(f'<path d="{path_d}" fill="none" stroke="#d62728" stroke-width="2"/>')
    # the points, numbered; the legend lists the numbers
    labels = sorted({p[0] for p in pts})
    number = {label: i + 1 for i, label in enumerate(labels)}
    for label, tier, x, y in pts:
        color = TIER_COLORS.get(tier, "black")
        fill = "none" if tier == "torch" else color
        parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="4" fill="{fill}" stroke="{color}" '
                     f'stroke-width="1.5"><title>{escape(label)} ({tier}): {y:.2f} GFLOP/s</title></circle>')
        parts.append(f'<text x="{sx(x) + 5:.1f}" y="{sy(y) - 4:.1f}" font-size="9" fill="{color}">'
                     f'{number[label]}</text>')
    legend_x, legend_y = left + plot_w + 12, top + 8
    for i, (tier, color) in enumerate(TIER_COLORS.items()):
        fill = "none" if tier == "torch" else color
        parts.append(f'<circle cx="{legend_x + 5}" cy="{legend_y + 14 * i}" r="4" fill="{fill}" '
                     f'stroke="{color}" stroke-width="1.5"/>')
        parts.append(f'<text x="{legend_x + 14}" y="{legend_y + 14 * i + 4}">{tier}</text>')
    for i, label in enumerate(labels):
        parts.append(f'<text x="{legend_x}" y="{legend_y + 70 + 12 * i}" font-size="9">'
                     f'{number[label]}: {escape(label)}</text>')
    if skipped:
        parts.append(f'<text x="{left}" y="{height - 8}" font-size="9">no FLOPs (not plotted): '
                     f'{escape(", ".join(skipped))}</text>')
    parts.append("</svg>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts))
    return path


def write_png(payload, path):
    """The same plot with matplotlib; returns None when matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    pts, skipped = points(payload)
    peak_gflops, peak_gbps, device = _peak(payload)
    ridge = peak_gflops / peak_gbps
    x_lo, x_hi = _bounds([p[2] for p in pts] or [ridge], [ridge / 10, ridge * 10])
    fig, ax = plt.subplots(figsize=(11, 7))
    xs = [x_lo, ridge, x_hi] if x_lo < ridge < x_hi else [x_lo, x_hi]
    ax.loglog(xs, [min(peak_gflops, x * peak_gbps) for x in xs], color="#d62728", lw=2,
              label=f"roof: {peak_gflops:.0f} GFLOP/s, {peak_gbps:.1f} GB/s")
    labels = sorted({p[0] for p in pts})
    number = {label: i + 1 for i, label in enumerate(labels)}
    for tier, color in TIER_COLORS.items():
        chosen = [p for p in pts if p[1] == tier]
        if not chosen:
            continue
        ax.scatter([p[2] for p in chosen], [p[3] for p in chosen], s=30, label=tier,
                   facecolors="none" if tier == "torch" else color, edgecolors=color)
        for label, _, x, y in chosen:
            ax.annotate(str(number[label]), (x, y), fontsize=7, color=color,
                        xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("arithmetic intensity (FLOP / byte)")
    ax.set_ylabel("GFLOP/s")
    ax.set_title(f"Roofline ({device})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    caption = "\n".join(f"{number[label]}: {label}" for label in labels)
    fig.text(0.83, 0.95, caption, fontsize=6, va="top", family="monospace")
    fig.subplots_adjust(right=0.8)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot(payload, out):
    """Write out.svg (always) and out.png (with matplotlib); returns the paths written."""
    if isinstance(payload, (str, os.PathLike)):
        with open(payload, encoding="utf-8") as f:
            payload = json.load(f)
    base = os.fspath(out)
    if base.endswith((".svg", ".png")):
        base = base[:-4]
    os.makedirs(os.path.dirname(os.path.abspath(base)), exist_ok=True)
    written = [write_svg(payload, base + ".svg")]
    png = write_png(payload, base + ".png")
    if png:
        written.append(png)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", default=str(common.RESULTS_DIR / "kernels.json"))
    parser.add_argument("--out", help="output path without extension (default: beside the JSON)")
    args = parser.parse_args(argv)
    out = args.out or os.path.splitext(args.results)[0] + "-roofline"
    for path in plot(args.results, out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
