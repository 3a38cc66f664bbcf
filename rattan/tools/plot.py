"""`rattan plot`: what a run did over time, as a picture (like Mahimahi's mm-graph).

Input: the JSON result of `rattan sim --json` (its `series`). Three panels share the time axis:
throughput (each flow's received rate, each rate-limited cell's output beside its configured rate),
one-way delay of each flow, and each cell's queue with its drops. Written as PNG and SVG.
"""
from __future__ import annotations

import json
import os


class PlotError(ValueError):
    """The input cannot be plotted; the message says why."""


def load_series(path: str) -> dict:
    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as e:
        raise PlotError(f"cannot read {path}: {e.strerror}") from None
    except ValueError as e:
        raise PlotError(f"{path} is not JSON: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("series"), dict):
        raise PlotError(f"{path} has no time series: give the output of `rattan sim ... --json`")
    s = doc["series"]
    if not s.get("t_s"):
        raise PlotError(f"{path}: the series is empty (a run paced for the control API is not sampled)")
    return doc


def _steps(t: list[float], interval: float) -> list[float]:
    """Sample times are interval ends; draw each value over its interval."""
    return [x - interval for x in t]


def plot(doc: dict, outputs: list[str]) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    matplotlib.rcParams["svg.fonttype"] = "none"  # SVG text stays text: selectable, searchable
    import matplotlib.pyplot as plt

    s = doc["series"]
    t, dt = s["t_s"], s["interval_s"]
    starts = _steps(t, dt)
    fig, (ax_rate, ax_delay, ax_queue) = plt.subplots(3, 1, figsize=(11, 9), sharex=True,
                                                       gridspec_kw={"height_ratios": [3, 2, 2]})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]

    for i, (flow, fs) in enumerate(zip(doc["flows"], s["flows"])):
        c = colors[i % len(colors)]
        label = f"{flow['src']}→{flow['dst']} {flow['kind']} {flow['rate_bps'] / 1e6:g} Mbit/s"
        ax_rate.step(starts, [v / 1e6 for v in fs["received_bps"]], where="post", color=c, lw=1.4,
                     label=f"{label}: received")
        delays = [float("nan") if v is None else v for v in fs["delay_ms_mean"]]
        ax_delay.step(starts, delays, where="post", color=c, lw=1.2, label=label)
    k = len(doc["flows"])
    for name, cs in s["cells"].items():
        if "rate_bps" in cs:
            c = colors[k % len(colors)]
            k += 1
            ax_rate.step(starts, [v / 1e6 for v in cs["rate_bps"]], where="post", color=c, ls="--", lw=1.2,
                         label=f"{name}: configured rate")
            ax_rate.step(starts, [v / 1e6 for v in cs["out_bps"]], where="post", color=c, lw=0.8, alpha=0.6,
                         label=f"{name}: output")
    # queues are what rate-limited cells hold; a delay line's packets in flight are not drawn as a queue
    queues = {"bw", "bw_trace", "token_bucket"}
    busy = [(n, cs) for n, cs in s["cells"].items()
            if (cs.get("type") in queues and any(cs["queued_packets"])) or any(cs["dropped_packets"])]
    for j, (name, cs) in enumerate(busy):
        c = colors[(k + j) % len(colors)]
        if cs.get("type") in queues:
            ax_queue.step(starts, cs["queued_packets"], where="post", color=c, lw=1.2, label=f"{name}: queued")
        drops = [(x, d) for x, d in zip(starts, cs["dropped_packets"]) if d]
        if drops:
            ax_queue.scatter([x + dt / 2 for x, _ in drops], [d for _, d in drops], color=c, marker="x", s=14,
                             label=f"{name}: dropped per {dt * 1000:g} ms")
    if not busy:
        ax_queue.text(0.5, 0.5, "no queue built up and nothing was dropped", transform=ax_queue.transAxes,
                      ha="center", va="center", color="gray")

    ax_rate.set_ylabel("throughput (Mbit/s)")
    ax_delay.set_ylabel("one-way delay (ms)")
    ax_queue.set_ylabel("packets")
    ax_queue.set_xlabel("time (s)")
    for ax in (ax_rate, ax_delay, ax_queue):
        ax.grid(True, alpha=0.3)
        ax.set_xlim(0, t[-1])
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper right", fontsize=8, framealpha=0.85)
    ax_rate.set_ylim(bottom=0)
    seen = [v for fs in s["flows"] for v in fs["delay_ms_mean"] if v]
    if seen and max(seen) > 100 * min(seen):  # a standing queue beside a short path: both readable
        ax_delay.set_yscale("log")
        ax_delay.set_ylabel("one-way delay (ms, log scale)")
    else:
        ax_delay.set_ylim(bottom=0)
    ax_queue.set_ylim(bottom=0)
    fig.suptitle(f"channel {doc.get('channel', '?')}: {doc['duration_s']:g} s of virtual time, seed {doc['seed']}, "
                 f"sampled every {dt * 1000:g} ms")
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
