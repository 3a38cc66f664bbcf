"""`rattan plot`: a sim result drawn as PNG and SVG with labelled axes, legends and configured rates."""
from __future__ import annotations

import json


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
    for label in ("throughput (Mbit/s)", "time (s)", "one-way delay", "up: configured rate",
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
    for label in ("up: output", "up: configured rate (at start)", "up: queued", "up: dropped per 50 ms",
                  "time in the cell", "sampled every 50 ms"):
        assert label in text, label
    code, _, err = run_cli("plot", str(log), "--interval", "fast")
    assert code == 2 and "not a time" in err
