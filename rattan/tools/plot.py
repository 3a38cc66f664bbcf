"""`rattan plot`: what a run did over time, as a picture (like Mahimahi's mm-graph).

Input: the JSON result of `rattan sim --json` (its `series`), or a packet log (`--packet-log`) of
`rattan run` or `rattan sim`. Three panels share the time axis: throughput (flows' received rates
or cells' output, beside each rate-limited cell's configured rate), delay (flows' one-way delay or
the time packets spent in each cell), and queues with drops. Written as PNG and SVG.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

QUEUE_TYPES = {"bw", "bw_trace", "token_bucket"}


class PlotError(ValueError):
    """The input cannot be plotted; the message says why."""


@dataclass
class Figure:
    """What to draw: sample end times, the interval, and each panel's lines."""
    title: str
    t: list[float]
    interval: float
    rate: list[tuple[str, list[float], str]] = field(default_factory=list)     # label, Mbit/s, style
    delay: list[tuple[str, list[float | None]]] = field(default_factory=list)  # label, ms
    delay_label: str = "one-way delay (ms)"
    queue: list[tuple[str, list[int]]] = field(default_factory=list)           # label, packets
    drops: list[tuple[str, list[int]]] = field(default_factory=list)           # label, per interval


def load(path: str, interval: str | None = None) -> Figure:
    """A sim result or a packet log, as a Figure."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise PlotError(f"cannot read {path}: {e.strerror}") from None
    from ..runtime.packet_log import MAGIC
    if head == MAGIC:
        return _from_log(path, interval)
    return _from_sim(load_series(path))


def load_series(path: str) -> dict:
    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as e:
        raise PlotError(f"cannot read {path}: {e.strerror}") from None
    except ValueError as e:
        raise PlotError(f"{path} is not JSON (nor a packet log): {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("series"), dict):
        raise PlotError(f"{path} has no time series: give the output of `rattan sim ... --json` or a packet log")
    if not doc["series"].get("t_s"):
        raise PlotError(f"{path}: the series is empty (a run paced for the control API is not sampled)")
    return doc


def _from_sim(doc: dict) -> Figure:
    s = doc["series"]
    fig = Figure(f"channel {doc.get('channel', '?')}: {doc['duration_s']:g} s of virtual time, seed {doc['seed']}, "
                 f"sampled every {s['interval_s'] * 1000:g} ms", s["t_s"], s["interval_s"])
    for flow, fs in zip(doc["flows"], s["flows"]):
        label = f"{flow['src']}→{flow['dst']} {flow['kind']} {flow['rate_bps'] / 1e6:g} Mbit/s"
        fig.rate.append((f"{label}: received", [v / 1e6 for v in fs["received_bps"]], "-"))
        fig.delay.append((label, fs["delay_ms_mean"]))
    for name, cs in s["cells"].items():
        if "rate_bps" in cs:
            fig.rate.append((f"{name}: configured rate", [v / 1e6 for v in cs["rate_bps"]], "--"))
            fig.rate.append((f"{name}: output", [v / 1e6 for v in cs["out_bps"]], ":"))
        if cs.get("type") in QUEUE_TYPES and any(cs["queued_packets"]):
            fig.queue.append((f"{name}: queued", cs["queued_packets"]))
        if any(cs["dropped_packets"]):
            fig.drops.append((f"{name}: dropped", cs["dropped_packets"]))
    return fig


def _from_log(path: str, interval: str | None) -> Figure:
    """Per logged cell: output rate, mean time spent in the cell, queue (arrivals − departures −
    drops), drops; each interval's values from the records whose time falls in it."""
    from ..runtime import packet_log
    from ..units import TIME, QuantityError, parse_quantity
    header, records = packet_log.read(path)
    rows = list(records)
    if not rows:
        raise PlotError(f"{path}: the log has no records")
    t0 = min(r.t_ns for r in rows)
    end = max(r.t_ns for r in rows)
    if interval:
        try:
            step = round(parse_quantity(interval, TIME) * 10**9)
        except QuantityError as e:
            raise PlotError(f"--interval: {e}") from None
    else:
        step = max(10**8, -(-(end - t0) // 2000))
    if step <= 0:
        raise PlotError("--interval must be longer than 0s")
    n = (end - t0) // step + 1
    cells = {int(k): v for k, v in header["nodes"].items()}
    out_bytes = {k: [0] * n for k in cells}
    sojourn = {k: [[0, 0] for _ in range(n)] for k in cells}
    delta = {k: [0] * n for k in cells}
    drops = {k: [0] * n for k in cells}
    for r in rows:
        i = (r.t_ns - t0) // step
        if r.node not in cells:
            continue
        if r.event == "depart":
            out_bytes[r.node][i] += r.size
            sojourn[r.node][i][0] += r.sojourn_ns
            sojourn[r.node][i][1] += 1
            delta[r.node][i] -= 1
        elif r.event == "arrive":
            delta[r.node][i] += 1
        else:
            drops[r.node][i] += 1
            delta[r.node][i] -= 1
    real = header.get("clock") == "real"
    fig = Figure(f"packet log {os.path.basename(path)}: {(end - t0) / 1e9:.1f} s of "
                 f"{'real' if real else 'virtual'} time, sampled every {step / 1e6:g} ms",
                 [(i + 1) * step / 1e9 for i in range(n)], step / 1e9,
                 delay_label="time in the cell (ms, mean)")
    many = len({(v["channel"], v["instance"]) for v in cells.values()}) > 1
    for k, meta in cells.items():
        name = f"{meta['instance']}/{meta['name']}" if many else meta["name"]
        if not any(out_bytes[k]) and not any(drops[k]):
            continue
        fig.rate.append((f"{name}: output", [b * 8 / (step / 1e9) / 1e6 for b in out_bytes[k]], "-"))
        rate = (meta.get("config") or {}).get("rate")
        if meta["type"] in QUEUE_TYPES and isinstance(rate, (int, float)):
            fig.rate.append((f"{name}: configured rate (at start)", [rate / 1e6] * n, "--"))
        fig.delay.append((name, [s / c / 1e6 if c else None for s, c in sojourn[k]]))
        if meta["type"] in QUEUE_TYPES:
            level, queued = 0, []
            for d in delta[k]:
                level += d
                queued.append(max(level, 0))
            if any(queued):
                fig.queue.append((f"{name}: queued", queued))
        if any(drops[k]):
            fig.drops.append((f"{name}: dropped", drops[k]))
    return fig


def plot(fig_data: Figure, outputs: list[str]) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    matplotlib.rcParams["svg.fonttype"] = "none"  # SVG text stays text: selectable, searchable
    import matplotlib.pyplot as plt

    f = fig_data
    starts = [x - f.interval for x in f.t]  # each value is drawn over the interval that ends at its time
    fig, (ax_rate, ax_delay, ax_queue) = plt.subplots(3, 1, figsize=(11, 9), sharex=True,
                                                       gridspec_kw={"height_ratios": [3, 2, 2]})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    color_of: dict[str, str] = {}

    def color(label: str) -> str:
        key = label.split(":")[0]
        return color_of.setdefault(key, colors[len(color_of) % len(colors)])

    for label, values, style in f.rate:
        ax_rate.step(starts, values, where="post", color=color(label), ls=style,
                     lw=1.4 if style == "-" else 1.1, label=label)
    for label, values in f.delay:
        ax_delay.step(starts, [float("nan") if v is None else v for v in values], where="post",
                      color=color(label), lw=1.2, label=label)
    for label, values in f.queue:
        ax_queue.step(starts, values, where="post", color=color(label), lw=1.2, label=label)
    for label, values in f.drops:
        pts = [(x + f.interval / 2, d) for x, d in zip(starts, values) if d]
        ax_queue.scatter([x for x, _ in pts], [d for _, d in pts], color=color(label), marker="x", s=14,
                         label=f"{label} per {f.interval * 1000:g} ms")
    if not f.queue and not f.drops:
        ax_queue.text(0.5, 0.5, "no queue built up and nothing was dropped", transform=ax_queue.transAxes,
                      ha="center", va="center", color="gray")
    ax_rate.set_ylabel("throughput (Mbit/s)")
    ax_delay.set_ylabel(f.delay_label)
    ax_queue.set_ylabel("packets")
    ax_queue.set_xlabel("time (s)")
    for ax in (ax_rate, ax_delay, ax_queue):
        ax.grid(True, alpha=0.3)
        ax.set_xlim(0, f.t[-1])
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper right", fontsize=8, framealpha=0.85)
    ax_rate.set_ylim(bottom=0)
    ax_queue.set_ylim(bottom=0)
    seen = [v for _, values in f.delay for v in values if v]
    if seen and max(seen) > 100 * min(seen):  # a standing queue beside a short path: both readable
        ax_delay.set_yscale("log")
        ax_delay.set_ylabel(f.delay_label.replace("(ms", "(ms, log scale"))
    else:
        ax_delay.set_ylim(bottom=0)
    fig.suptitle(f.title)
    fig.tight_layout()
    written = []
    for out in outputs:
        fig.savefig(out, dpi=120)
        written.append(out)
    plt.close(fig)
    return written


def default_outputs(path: str) -> list[str]:
    stem = os.path.splitext(path)[0]
    return [stem + ".png", stem + ".svg"]
