"""`rattan plot`: what a run did over time, as a picture (like Mahimahi's mm-graph).

Input: the JSON result of `rattan sim --json` (its `series`), or a packet log (`--packet-log`) of
`rattan run` or `rattan sim`. Four panels share one time axis, in seconds since the run's start
(the origin of the sim's series, of the log's `t_ns` and of `rattan ctl --at`): throughput (flows'
received rates or cells' output, beside each rate-limited cell's configured rate), delay (flows'
one-way delay or the time packets spent in each cell), queue length, and drops per interval (on
their own axis: a few drops stay visible beside a queue of a thousand packets). Legends sit to the
right of the panels, never over the data. Written as PNG and SVG.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field


def _cell_type(name: str):
    """The registry's cell type of this name (None for a plugin that is not installed here)."""
    from ..registry import default_registry
    return default_registry().get(name)


def _holds_queue(type_name: str | None) -> bool:
    """Whether cells of this type keep a queue worth a line in the queue panel (the schema says)."""
    ct = _cell_type(type_name) if type_name else None
    return ct is not None and ct.holds_queue()


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
        if _holds_queue(cs.get("type")) and any(cs["queued_packets"]):
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
    # Record times count from the run's start (the engine's t = 0), like `t_ns` in `rattan log --to
    # csv` and `ctl --at`: the time axis starts there too, not at the first packet.
    end = max(r.t_ns for r in rows)
    if interval:
        try:
            step = round(parse_quantity(interval, TIME) * 10**9)
        except QuantityError as e:
            raise PlotError(f"--interval: {e}") from None
    else:
        step = max(10**8, -(-end // 2000))
    if step <= 0:
        raise PlotError("--interval must be longer than 0s")
    n = max(1, -(-end // step))  # the last interval is closed: a record at its end is in it
    cells = {int(k): v for k, v in header["nodes"].items()}
    out_bytes = {k: [0] * n for k in cells}
    sojourn = {k: [[0, 0] for _ in range(n)] for k in cells}
    delta = {k: [0] * n for k in cells}
    drops = {k: [0] * n for k in cells}
    for r in rows:
        i = min(r.t_ns // step, n - 1)
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
    fig = Figure(f"packet log {os.path.basename(path)}: {end / 1e9:.1f} s of "
                 f"{'real' if real else 'virtual'} time, sampled every {step / 1e6:g} ms",
                 [(i + 1) * step / 1e9 for i in range(n)], step / 1e9,
                 delay_label="time in the cell (ms, mean)")
    many = len({(v["channel"], v["instance"]) for v in cells.values()}) > 1
    for k, meta in cells.items():
        name = f"{meta['instance']}/{meta['name']}" if many else meta["name"]
        if not any(out_bytes[k]) and not any(drops[k]):
            continue
        fig.rate.append((f"{name}: output", [b * 8 / (step / 1e9) / 1e6 for b in out_bytes[k]], "-"))
        ct = _cell_type(meta["type"])
        rate = (meta.get("config") or {}).get(ct.rate_limit()) if ct is not None and ct.rate_limit() else None
        if isinstance(rate, (int, float)):
            fig.rate.append((f"{name}: configured rate (at start)", [rate / 1e6] * n, "--"))
        fig.delay.append((name, [s / c / 1e6 if c else None for s, c in sojourn[k]]))
        if ct is not None and ct.holds_queue():
            level, queued = 0, []
            for d in delta[k]:
                level += d
                queued.append(max(level, 0))
            if any(queued):
                fig.queue.append((f"{name}: queued", queued))
        if any(drops[k]):
            fig.drops.append((f"{name}: dropped", drops[k]))
    return fig


def draw(f: Figure):
    """`f` as a matplotlib figure (four panels over one time axis; call `plot` to write files)."""
    import matplotlib
    matplotlib.use("Agg")
    matplotlib.rcParams["svg.fonttype"] = "none"  # SVG text stays text: selectable, searchable
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    # Each value is drawn over the interval that ends at its time; the last one's end closes the line.
    xs = [x - f.interval for x in f.t] + [f.t[-1]]

    def held(values: list) -> list:
        return list(values) + list(values[-1:])
    # Constrained layout makes room for the legends outside the panels and keeps the panels aligned.
    fig, (ax_rate, ax_delay, ax_queue, ax_drops) = plt.subplots(
        4, 1, figsize=(13, 10.5), sharex=True, layout="constrained",
        gridspec_kw={"height_ratios": [3, 2, 2, 1.5]})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    color_of: dict[str, str] = {}

    def color(label: str) -> str:
        key = label.split(":")[0]
        return color_of.setdefault(key, colors[len(color_of) % len(colors)])

    measured = [v for _, values, style in f.rate if style != "--" for v in values if v > 0]
    configured = [v for _, values, style in f.rate if style == "--" for v in values if v > 0]
    # A few pings on a 100 Mbit/s link: on a linear axis the traffic is a line along zero.
    rate_log = bool(measured and configured) and max(configured) > 100 * max(measured)
    for label, values, style in f.rate:
        if rate_log:  # an idle interval is a gap, not a fall to the bottom of the axis
            values = [v if v > 0 else float("nan") for v in values]
        ax_rate.step(xs, held(values), where="post", color=color(label), ls=style,
                     lw=1.4 if style == "-" else 1.1, label=label)
    for label, values in f.delay:
        ax_delay.step(xs, held([float("nan") if v is None else v for v in values]), where="post",
                      color=color(label), lw=1.2, label=label)
    for label, values in f.queue:
        ax_queue.step(xs, held(values), where="post", color=color(label), lw=1.2, label=label)
    for label, values in f.drops:
        ax_drops.step(xs, held(values), where="post", color=color(label), lw=1.2, label=label)
    for ax, what, empty in ((ax_queue, f.queue, "no queue built up"), (ax_drops, f.drops, "nothing was dropped")):
        if not what:
            ax.text(0.5, 0.5, empty, transform=ax.transAxes, ha="center", va="center", color="gray")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # packets: whole numbers
    ax_rate.set_ylabel("throughput (Mbit/s)")
    delay_label = f.delay_label.replace(" (", "\n(", 1)  # two lines: as tall as its panel at most
    ax_delay.set_ylabel(delay_label)
    ax_queue.set_ylabel("queued (packets)")
    ax_drops.set_ylabel(f"dropped\n(packets per {f.interval * 1000:g} ms)")
    ax_drops.set_xlabel("time since the run's start (s)")
    for ax in (ax_rate, ax_delay, ax_queue, ax_drops):
        ax.grid(True, alpha=0.3)
        ax.set_xlim(0, f.t[-1])
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0, fontsize=8)
    for ax, lines in ((ax_rate, f.rate), (ax_queue, f.queue), (ax_drops, f.drops)):
        top = max((v for line in lines for v in line[1]), default=0)
        ax.set_ylim(0, top * 1.08 or 1)  # room above the highest line: none runs along the frame
    if rate_log:
        ax_rate.set_yscale("log")
        ax_rate.set_ylim(min(measured) / 2, max(configured) * 2)
        ax_rate.set_ylabel("throughput (Mbit/s, log scale)")
    seen = [v for _, values in f.delay for v in values if v]
    if seen and max(seen) > 100 * min(seen):  # a standing queue beside a short path: both readable
        ax_delay.set_yscale("log")
        ax_delay.set_ylabel(delay_label.replace("(ms", "(ms, log scale"))
    else:
        ax_delay.set_ylim(bottom=0)
    fig.suptitle(f.title)
    return fig


def plot(fig_data: Figure, outputs: list[str]) -> list[str]:
    """Draw `fig_data` into each of `outputs` (the format from the suffix); the paths written."""
    import matplotlib.pyplot as plt
    fig = draw(fig_data)
    written = []
    try:
        for out in outputs:
            fig.savefig(out, dpi=120)
            written.append(out)
    finally:
        plt.close(fig)
    return written


def default_outputs(path: str) -> list[str]:
    stem = os.path.splitext(path)[0]
    return [stem + ".png", stem + ".svg"]
