"""`rattan plot`: a sim result or a packet log drawn as PNG and SVG with labelled axes, legends and
configured rates; one time origin (the run's start), drops on their own axis, legends off the data."""
from __future__ import annotations

import json

import pytest


def test_plot_writes_png_and_svg_that_show_what_happened(run_cli, tmp_path):
    code, out, err = run_cli("sim", "examples/flaky.rtn", "--flow", "left->right:cbr:20Mbps", "--duration", "40s",
                             "--json")
    assert code == 0, err
    result = tmp_path / "flaky.json"
    result.write_text(out)
    code, out, err = run_cli("plot", str(result))
    assert code == 0, err
    png, svg = tmp_path / "flaky.png", tmp_path / "flaky.svg"
    assert out.split() == [str(png), str(svg)]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    text = svg.read_text()
    for label in ("throughput (Mbit/s)", "time since the run", "one-way delay", "up: configured rate",
                  "left→right cbr 20 Mbit/s: received", "up: queued", "channel flaky"):
        assert label in text, label


def test_plot_refuses_what_it_cannot_draw(run_cli, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = run_cli("plot", str(bad))
    assert code == 2 and "not JSON" in err
    bad.write_text(json.dumps({"duration_s": 1}))
    code, _, err = run_cli("plot", str(bad))
    assert code == 2 and "no time series" in err
    code, _, err = run_cli("plot", str(bad), "-o", str(tmp_path / "x.gif"))
    assert code == 2 and ".png, .svg or .pdf" in err
    code, _, err = run_cli("plot", str(tmp_path / "missing.json"))
    assert code == 2 and "cannot read" in err


def test_plot_from_a_packet_log(run_cli, tmp_path):
    log = tmp_path / "run.log"
    code, _, err = run_cli("sim", "examples/broadband.rtn", "--flow", "left->right:poisson:25Mbps", "--duration", "3s",
                           "--packet-log", str(log))
    assert code == 0, err
    code, out, err = run_cli("plot", str(log), "--interval", "50ms", "-o", str(tmp_path / "log.svg"))
    assert code == 0, err
    text = (tmp_path / "log.svg").read_text()
    for label in ("up: output", "up: configured rate (at start)", "up: queued", "up: dropped", "per 50 ms",
                  "time in the cell", "sampled every 50 ms"):
        assert label in text, label
    code, _, err = run_cli("plot", str(log), "--interval", "fast")
    assert code == 2 and "not a time" in err


# ------------------------------------------------------- what the picture shows, on its figure
LATE = """\
# Nothing passes `cut` before 2 s: the first record of `up` is at 2 s of the run.
channel late {
    cell cut: outage { state = down }
    cell up: bw { rate = 10Mbps }
    left -> cut -> up -> right
    right -> left

    at 2s { cut.state = up }
}
"""


def _lines(fig) -> dict:
    """Every labelled line of a matplotlib figure, by label: (its axes, x, y)."""
    return {ln.get_label(): (ax, list(ln.get_xdata()), list(ln.get_ydata()))
            for ax in fig.axes for ln in ax.get_lines() if not ln.get_label().startswith("_")}


def _sim_figure(run_cli, tmp_path, *args):
    from rattan.tools.plot import draw, load
    code, out, err = run_cli("sim", *args, "--json")
    assert code == 0, err
    (tmp_path / "result.json").write_text(out)
    return draw(load(str(tmp_path / "result.json")))


def _log_figure(run_cli, tmp_path, *args, interval="100ms"):
    from rattan.tools.plot import draw, load
    log = tmp_path / "run.log"
    code, _, err = run_cli("sim", *args, "--packet-log", str(log))
    assert code == 0, err
    return log, draw(load(str(log), interval))


def test_a_log_plot_counts_time_from_the_run_start_like_the_csv(run_cli, tmp_path):
    src = tmp_path / "late.rtn"
    src.write_text(LATE)
    log, fig = _log_figure(run_cli, tmp_path, str(src), "--flow", "left->right:cbr:1Mbps", "--duration", "3s",
                           "--log-cells", "up")
    code, _, err = run_cli("log", str(log), "--to", "csv", "-o", str(tmp_path / "run.csv"))
    assert code == 0, err
    first_ns = int((tmp_path / "run.csv").read_text().splitlines()[1].split(",")[0])
    assert 2.0 <= first_ns / 1e9 < 2.1  # the CSV's origin: the run's start
    _, x, y = _lines(fig)["up: output"]
    first = next(xi for xi, yi in zip(x, y) if yi > 0)
    assert first == pytest.approx(2.0)  # the interval [2.0 s, 2.1 s) holds the first packet: not 0
    assert x[0] == 0 and all(yi == 0 for xi, yi in zip(x, y) if xi < 2.0)
    assert fig.axes[-1].get_xlim()[0] == 0
    assert "run's start" in fig.axes[-1].get_xlabel()


@pytest.mark.parametrize("source", ["sim", "log"])
def test_drops_have_their_own_axis(run_cli, tmp_path, source):
    # 25 Mbit/s into the 20 Mbit/s uplink: the 1000-packet queue fills, then ~40 drops per 100 ms.
    args = ("examples/broadband.rtn", "--flow", "left->right:cbr:25Mbps", "--duration", "5s")
    fig = _sim_figure(run_cli, tmp_path, *args) if source == "sim" else _log_figure(run_cli, tmp_path, *args)[1]
    # Whatever draws them (lines, markers), the drops are on axes of their own.
    drop_axes = {ax for ax in fig.axes for art in ax.get_children() if "dropped" in str(art.get_label())}
    lines = _lines(fig)
    ax_q, _, queued = lines["up: queued"]
    assert ax_q not in drop_axes and len(drop_axes) == 1
    ax_d, _, dropped = lines["up: dropped"]
    assert max(queued) >= 900 and 10 <= max(dropped) <= 100
    assert "dropped" in ax_d.get_ylabel() and "per 100 ms" in ax_d.get_ylabel()
    # The drops fill their axis instead of lying along its bottom.
    assert max(dropped) > 0.8 * ax_d.get_ylim()[1]
    assert {lbl for lbl, (a, _, _) in lines.items() if a is ax_d} == {lbl for lbl in lines if "dropped" in lbl}


@pytest.mark.parametrize("source", ["sim", "log"])
def test_legends_sit_outside_every_panel(run_cli, tmp_path, source):
    args = ("examples/broadband.rtn", "--flow", "left->right:cbr:25Mbps", "--flow", "right->left:poisson:80Mbps",
            "--duration", "3s")
    fig = _sim_figure(run_cli, tmp_path, *args) if source == "sim" else _log_figure(run_cli, tmp_path, *args)[1]
    fig.canvas.draw()  # legends and panels take their final places
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    page = fig.bbox
    for legend in legends:
        box = legend.get_window_extent()
        assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1  # not cut off
        for ax in fig.axes:
            area = ax.get_window_extent()
            overlap = min(box.x1, area.x1) - max(box.x0, area.x0), min(box.y1, area.y1) - max(box.y0, area.y0)
            assert not (overlap[0] > 0 and overlap[1] > 0), (legend.get_texts()[0].get_text(), ax.get_ylabel())
    assert len(legends) == 4  # throughput, delay, queue, drops
