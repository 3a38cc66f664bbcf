"""What `rattan batch show` and `rattan batch plot` make of the results store.

`rows` reads the runs; `render` turns them into a table, CSV or JSON; `plot` draws one metric
against one axis with matplotlib: a line per value of another axis, a panel per value of a third
(and a fourth, as rows), each point the mean over seeds and repetitions with its 95 % Student-t
confidence interval.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import statistics
from dataclasses import dataclass

from .store import magnitude, value_text

# run fields shown before the parameters and after the metrics
_FIRST = ("status",)
_LAST = ("attempts", "machine", "duration_s")
_CSV_LAST = ("attempts", "machine", "started", "ended", "duration_s", "plan_hash", "rattan_version", "key",
             "error")
BUILT_IN = ("topology", "seed", "repetition")

# a metric's unit from its name's suffix: (suffix, scale, unit shown)
_UNITS = (("_bps", 1e-6, "Mbit/s"), ("_rate", 100.0, "%"), ("_percent", 1.0, "%"), ("_ms", 1.0, "ms"),
          ("_bytes", 1.0, "bytes"), ("_s", 1.0, "s"))


class ReportError(Exception):
    """Nothing to show or draw, or an axis or metric the results do not have (message for the user)."""


def rows(store, experiment: str | None = None, where: dict | None = None, status: str | None = None) -> list[dict]:
    """The runs of `experiment` (the only one in the store when None) matching `where`/`status`."""
    if experiment is None:
        names = store.experiments()
        if not names:
            raise ReportError(f"{store.url}: no runs recorded yet")
        if len(names) > 1:
            raise ReportError(f"{store.url} holds experiments {', '.join(names)}: choose one with --experiment")
        experiment = names[0]
    elif experiment not in store.experiments():
        known = store.experiments()
        raise ReportError(f"{store.url} has no runs of experiment `{experiment}`"
                          + (f" (it has {', '.join(known)})" if known else " (it has none)"))
    if where:
        axes = {a for r in store.runs(experiment) for a in r["params"]}
        for axis in where:
            if axis not in axes:
                from ..diagnostics import did_you_mean
                guess = did_you_mean(axis, sorted(axes))
                raise ReportError(f"--where {axis}=...: `{axis}` is no axis of experiment `{experiment}`"
                                  + (f": did you mean `{guess}`?" if guess else "")
                                  + f" (axes: {', '.join(sorted(axes))})")
    return store.runs(experiment, where=where, status=status)


def axes_of(runs: list[dict]) -> list[str]:
    """The parameters that vary (in the order of the first run), then seed/repetition if they vary."""
    order: list[str] = []
    for r in runs:
        for a in r["params"]:
            if a not in order:
                order.append(a)
    varying = [a for a in order if len({value_text(r["params"].get(a)) for r in runs}) > 1]
    return [a for a in varying if a not in ("seed", "repetition")] + [a for a in ("seed", "repetition")
                                                                       if a in varying]


def metric_names(runs: list[dict]) -> list[str]:
    """Every numeric metric any run has, sorted."""
    return sorted({m for r in runs for m, v in (r.get("metrics") or {}).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)})


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-2):
            return f"{v:.4g}"
        return f"{v:.3f}".rstrip("0").rstrip(".")
    return value_text(v) if not isinstance(v, str) else v


def render(runs: list[dict], fmt: str = "table", metrics: list[str] | None = None) -> str:
    """The runs as an aligned table, CSV (a header row, a column per axis and metric) or JSON."""
    if fmt == "json":
        return json.dumps(runs, indent=2, default=str) + "\n"
    axes = axes_of(runs) if fmt == "table" else sorted({a for r in runs for a in r["params"]},
                                                          key=lambda a: (a in BUILT_IN, a))
    names = metrics or metric_names(runs)
    if fmt == "csv":
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["experiment", *_FIRST, *axes, *names, *_CSV_LAST])
        for r in runs:
            w.writerow([r["experiment"], *(r[k] for k in _FIRST), *(value_text(r["params"].get(a)) for a in axes),
                        *((r.get("metrics") or {}).get(m, "") for m in names),
                        *("" if r.get(k) is None else r[k] for k in _CSV_LAST)])
        return out.getvalue()
    if fmt != "table":
        raise ReportError(f"unknown format `{fmt}`: table, csv or json")
    if not runs:
        return "no runs match\n"
    header = [*_FIRST, *axes, *names, *_LAST]
    table = [header]
    for r in runs:
        table.append([*(_cell(r[k]) for k in _FIRST), *(_cell(r["params"].get(a)) for a in axes),
                      *(_cell((r.get("metrics") or {}).get(m)) for m in names),
                      *(_cell(r.get(k)) for k in _LAST)])
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    numeric = set(range(1 + len(axes), len(header)))
    lines = ["  ".join(v.rjust(w) if i in numeric else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths))).rstrip()
             for row in table]
    failed = [r for r in runs if r["status"] != "ok"]
    for r in failed:
        lines.append("")
        where = ", ".join(f"{a}={_cell(r['params'].get(a))}" for a in axes)
        lines.append(f"failed run {r['key']} ({where}), "
                     f"{r['attempts']} attempt(s): {(r.get('error') or '').strip()}")
        if r.get("stderr"):
            lines += ["  " + line for line in r["stderr"].rstrip().splitlines()[-8:]]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------- plots

@dataclass(frozen=True)
class Point:
    x: object
    mean: float
    low: float      # the 95 % interval (equal to mean with one sample)
    high: float
    n: int


def _t95(df: int) -> float:
    """The two-sided 95 % quantile of Student's t with `df` degrees of freedom."""
    table = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
             10: 2.228, 12: 2.179, 15: 2.131, 20: 2.086, 25: 2.060, 30: 2.042, 40: 2.021, 60: 2.000,
             120: 1.980}
    if df in table:
        return table[df]
    try:
        from scipy.stats import t  # exact where available
        return float(t.ppf(0.975, df))
    except ImportError:
        lower = max(k for k in table if k < df) if df > 1 else 1
        return table[lower] if df < 120 else 1.960


def mean_ci(values: list[float]) -> tuple[float, float, float]:
    """Mean and its 95 % Student-t confidence interval."""
    m = statistics.fmean(values)
    if len(values) < 2:
        return m, m, m
    half = _t95(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return m, m - half, m + half


def _order(values, known: list | None = None) -> list:
    """Axis values in a reading order: the sweep's (`known`, the experiment file's list) when given,
    else by magnitude when all are numbers or quantities (100KB < 1MB), else as they first appeared."""
    seen: list = []
    for v in values:
        if v not in seen:
            seen.append(v)
    if known:
        texts = [value_text(k) for k in known]
        return sorted(seen, key=lambda v: texts.index(value_text(v)) if value_text(v) in texts else len(texts))
    mags = [magnitude(v) for v in seen]
    if all(m is not None for m in mags):
        return [v for _, v in sorted(zip(mags, seen), key=lambda p: p[0])]
    return seen


def _unit(metric: str) -> tuple[float, str]:
    base = metric.rsplit(".", 1)[-1]
    for suffix, scale, unit in _UNITS:
        if base.endswith(suffix):
            return scale, unit
    return 1.0, ""


def series(runs: list[dict], metric: str, x: str, lines: str | None = None, facet: str | None = None,
           facet_rows: str | None = None, scale: float = 1.0, order: dict | None = None) -> dict:
    """{(row value, facet value): {line value: [Point...]}} from the ok runs that have `metric`."""
    ok = [r for r in runs if r["status"] == "ok"]
    have = [r for r in ok if isinstance((r.get("metrics") or {}).get(metric), (int, float))]
    if not have:
        known = metric_names(ok)
        from ..diagnostics import did_you_mean
        guess = did_you_mean(metric, known)
        raise ReportError(f"no ok run has a metric `{metric}`"
                          + (f": did you mean `{guess}`?" if guess else "")
                          + (f" (metrics: {', '.join(known)})" if known else " (no ok runs)"))
    params = {a for r in have for a in r["params"]}
    for what, axis in (("x", x), ("lines", lines), ("facet", facet), ("facet_rows", facet_rows)):
        if axis is not None and axis not in params:
            from ..diagnostics import did_you_mean
            guess = did_you_mean(axis, sorted(params))
            raise ReportError(f"{what} `{axis}` is no axis of these runs"
                              + (f": did you mean `{guess}`?" if guess else "")
                              + f" (axes: {', '.join(sorted(params))})")

    def get(r, axis):
        return None if axis is None else r["params"].get(axis)
    order = order or {}
    clip = all(float(r["metrics"][metric]) >= 0 for r in have)  # an interval of a count or rate stops at 0
    xs = _order((get(r, x) for r in have), order.get(x))
    out: dict = {}
    for row_v in _order((get(r, facet_rows) for r in have), order.get(facet_rows)):
        for col_v in _order((get(r, facet) for r in have), order.get(facet)):
            panel: dict = {}
            for line_v in _order((get(r, lines) for r in have), order.get(lines)):
                pts = []
                for xv in xs:
                    vals = [float(r["metrics"][metric]) * scale for r in have
                            if get(r, x) == xv and get(r, lines) == line_v and get(r, facet) == col_v
                            and get(r, facet_rows) == row_v]
                    vals = [v for v in vals if math.isfinite(v)]
                    if vals:
                        m, lo, hi = mean_ci(vals)
                        lo = max(lo, 0.0) if clip else lo
                        pts.append(Point(xv, m, lo, hi, len(vals)))
                if pts:
                    panel[line_v] = pts
            out[(row_v, col_v)] = panel
    return out


def _label(axis: str | None, value) -> str:
    if axis is None:
        return ""
    return f"{axis} = {_cell(value)}"


def plot(store, experiment: str | None, metric: str, x: str, *, lines: str | None = None,
         facet: str | None = None, facet_rows: str | None = None, output=None, title: str | None = None,
         ylabel: str | None = None, scale: float | None = None, where: dict | None = None,
         order: dict | None = None) -> list[str]:
    """Draw `metric` against axis `x` into each file of `output` (PNG, SVG or PDF by suffix).
    `order`: axis -> its values in the sweep's order (the experiment file's `sweep`), for legends,
    panels and ticks; otherwise quantities go by magnitude and words as first recorded."""
    runs = rows(store, experiment, where=where)
    if not runs:
        raise ReportError("no runs match" + (f" {where}" if where else ""))
    experiment = runs[0]["experiment"]
    outputs = [output] if isinstance(output, (str, os.PathLike)) else list(output or [])
    if not outputs:
        outputs = [f"{experiment}-{metric}.png"]
    for o in outputs:
        if os.path.splitext(str(o))[1].lower() not in (".png", ".svg", ".pdf"):
            raise ReportError(f"{o}: plots are .png, .svg or .pdf files")
    auto_scale, unit = _unit(metric)
    scale = auto_scale if scale is None else scale
    if ylabel is None:
        ylabel = metric + (f" ({unit})" if unit and scale == auto_scale else "")
    order = order or {}
    data = series(runs, metric, x, lines, facet, facet_rows, scale, order)

    import matplotlib
    matplotlib.use("Agg")
    matplotlib.rcParams["svg.fonttype"] = "none"
    import matplotlib.pyplot as plt

    row_vals = _order((k[0] for k in data), order.get(facet_rows))
    col_vals = _order((k[1] for k in data), order.get(facet))
    fig, axs = plt.subplots(len(row_vals), len(col_vals), squeeze=False, sharex=True, sharey=True,
                            figsize=(max(5.5, 4.2 * len(col_vals)) + 1.5, 3.4 * len(row_vals) + 0.8),
                            layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    line_vals = _order((lv for panel in data.values() for lv in panel), order.get(lines))
    xs = _order((p.x for panel in data.values() for pts in panel.values() for p in pts), order.get(x))
    xpos = {v: i for i, v in enumerate(xs)}
    n_lines = max(1, len(line_vals))
    width = min(0.06, 0.3 / n_lines) if n_lines > 1 else 0  # nudged apart so no bar hides another
    for i, rv in enumerate(row_vals):
        for j, cv in enumerate(col_vals):
            ax = axs[i][j]
            panel = data.get((rv, cv), {})
            for k, lv in enumerate(line_vals):
                pts = panel.get(lv)
                if not pts:
                    continue
                off = (k - (n_lines - 1) / 2) * width
                px = [xpos[p.x] + off for p in pts]
                ax.errorbar(px, [p.mean for p in pts],
                            yerr=[[p.mean - p.low for p in pts], [p.high - p.mean for p in pts]],
                            color=colors[k % len(colors)], marker="o", ms=4, lw=1.4, capsize=3, clip_on=False,
                            label=_cell(lv) if lines else metric)
            parts = [s for s in (_label(facet_rows, rv), _label(facet, cv)) if s]
            if parts:
                ax.set_title(", ".join(parts), fontsize=10)
            ax.grid(True, alpha=0.3)
            ax.set_xticks(range(len(xs)), [_cell(v) for v in xs])
            if i == len(row_vals) - 1:
                ax.set_xlabel(x)
            if j == 0:
                ax.set_ylabel(ylabel)
            if not panel:
                ax.text(0.5, 0.5, "no ok runs", transform=ax.transAxes, ha="center", va="center", color="gray")
    every = [p for panel in data.values() for pts in panel.values() for p in pts]
    if all(p.low >= 0 for p in every):  # shared by every panel: zero where a reader expects it, and room on top
        axs[0][0].set_ylim(0, max(p.high for p in every) * 1.08 or 1)
    axs[0][0].set_xlim(-0.5, len(xs) - 0.5)
    if lines:
        handles, labels = axs[0][0].get_legend_handles_labels()
        for ax in axs.flat:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                if lab not in labels:
                    handles.append(h)
                    labels.append(lab)
        fig.legend(handles, labels, title=lines, loc="outside right center")
    counts = sorted({p.n for panel in data.values() for pts in panel.values() for p in pts})
    n_text = f"{counts[0]} run{'s' * (counts[0] != 1)}" if len(counts) == 1 else f"{counts[0]}..{counts[-1]} runs"
    fig.suptitle(title or f"{experiment}: {metric} by {x} (mean and 95 % CI of {n_text} per point)")
    written = []
    try:
        for o in outputs:
            os.makedirs(os.path.dirname(os.path.abspath(o)), exist_ok=True)
            fig.savefig(o, dpi=120)
            written.append(str(o))
    finally:
        plt.close(fig)
    return written
