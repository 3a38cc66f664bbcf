"""`rattan batch show` and `rattan batch plot` on a store filled with known results (no root, no runs):
the order of axis values, the means and intervals drawn, what the files and tables contain, and the
messages for a metric or axis the results do not have."""
from __future__ import annotations

import json
import math
import re

import pytest

from rattan.batch import report
from rattan.batch.store import open_store
from rattan.cli import main

SIZES = ["10MB", "100KB", "1MB"]  # recorded out of order on purpose
CCS = ["cubic", "bbr"]
QUEUES = ["policer", "shaper"]


def goodput(cc: str, size: str, queue: str, seed: int) -> float:
    base = {"100KB": 4e6, "1MB": 2.2e6, "10MB": 2.0e6}[size]
    return base * (1.1 if cc == "bbr" else 1.0) * (0.9 if queue == "policer" else 1.0) + seed * 1e4


def _result(cc, size, queue, seed, status="ok"):
    return {"experiment": "study", "key": f"{cc}-{size}-{queue}-{seed}", "status": status, "attempt": 1,
            "params": {"topology": "mobile.rtn", "queue": queue, "cc": cc, "size": size, "seed": seed,
                       "repetition": 0},
            "seed": seed, "repetition": 0, "machine": "vm", "rattan_version": "0.1.0", "plan_hash": "ab",
            "started": "2026-12-02T10:00:00+00:00", "ended": "2026-12-02T10:00:05+00:00",
            "metrics": {"client.goodput_bps": goodput(cc, size, queue, seed), "client.retransmit_rate": 0.05,
                        "client.sender_tcp_congestion": cc} if status == "ok" else {},
            "error": None if status == "ok" else "client exited 1",
            "outputs": {} if status == "ok" else {"client": {"stderr": "iperf3: error - unable to connect\n"}}}


@pytest.fixture
def store(tmp_path):
    s = open_store(tmp_path / "study.sqlite")
    for size in SIZES:
        for cc in CCS:
            for queue in QUEUES:
                for seed in (1, 2, 3):
                    s.record(_result(cc, size, queue, seed))
    s.record(_result("reno", "1MB", "policer", 9, status="failed"))
    yield s
    s.close()


def test_mean_and_interval_are_student_t_95():
    m, lo, hi = report.mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0
    assert hi - m == pytest.approx(4.303 * 1.0 / math.sqrt(3), rel=1e-3)  # t(0.975, 2) = 4.303
    assert m - lo == pytest.approx(hi - m)
    assert report.mean_ci([5.0]) == (5.0, 5.0, 5.0)


def test_series_orders_sizes_by_magnitude_and_lines_as_swept(store):
    data = report.series(report.rows(store, "study"), "client.goodput_bps", "size", lines="cc", facet="queue")
    assert list(data) == [(None, "policer"), (None, "shaper")]
    panel = data[(None, "shaper")]
    assert list(panel) == ["cubic", "bbr"]  # reno's only run failed: no line
    assert [p.x for p in panel["bbr"]] == ["100KB", "1MB", "10MB"]
    p = panel["bbr"][0]
    want = [goodput("bbr", "100KB", "shaper", s) for s in (1, 2, 3)]
    assert p.n == 3 and p.mean == pytest.approx(sum(want) / 3)
    assert (p.low, p.high) == pytest.approx(report.mean_ci(want)[1:])


def test_plot_writes_png_and_svg_with_titles_legend_and_ordered_ticks(store, tmp_path):
    outs = [tmp_path / "g.png", tmp_path / "g.svg"]
    written = report.plot(store, "study", "client.goodput_bps", "size", lines="cc", facet="queue",
                          output=outs)
    assert written == [str(o) for o in outs]
    assert outs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = outs[1].read_text()
    texts = re.findall(r">([^<>]+)</text>", svg)
    for want in ("queue = policer", "queue = shaper", "cc", "cubic", "bbr", "client.goodput_bps (Mbit/s)"):
        assert want in texts, (want, texts)
    ticks = [t for t in texts if t in SIZES]
    assert ticks[:3] == ["100KB", "1MB", "10MB"], ticks
    assert "reno" not in texts


def test_plot_refuses_unknown_metric_axis_and_suffix(store, tmp_path):
    with pytest.raises(report.ReportError, match=r"did you mean `client.goodput_bps`"):
        report.plot(store, "study", "client.goodput", "size", output=[tmp_path / "x.png"])
    with pytest.raises(report.ReportError, match=r"x `sizes` is no axis.*did you mean `size`"):
        report.plot(store, "study", "client.goodput_bps", "sizes", output=[tmp_path / "x.png"])
    with pytest.raises(report.ReportError, match=r"\.png, \.svg or \.pdf"):
        report.plot(store, "study", "client.goodput_bps", "size", output=[tmp_path / "x.jpeg"])
    with pytest.raises(report.ReportError, match=r"no runs of experiment `studdy` \(it has study\)"):
        report.rows(store, "studdy")


def test_csv_has_a_column_per_axis_and_metric(store):
    text = report.render(report.rows(store, "study", where={"cc": "bbr", "size": "1MB"}), "csv")
    lines = text.splitlines()
    header = lines[0].split(",")
    for col in ("status", "cc", "queue", "size", "seed", "client.goodput_bps", "machine", "key"):
        assert col in header, header
    assert len(lines) == 1 + 2 * 3  # two queues x three seeds
    row = dict(zip(header, lines[1].split(",")))
    assert row["cc"] == "bbr" and row["size"] == "1MB"
    assert float(row["client.goodput_bps"]) == pytest.approx(goodput("bbr", "1MB", row["queue"], int(row["seed"])))


def test_table_shows_varying_axes_and_failed_runs_with_stderr(store):
    text = report.render(report.rows(store, "study"), "table")
    header = text.splitlines()[0].split()
    assert header[:5] == ["status", "queue", "cc", "size", "seed"]  # topology and repetition never vary
    assert "failed run reno-1MB-policer-9" in text and "client exited 1" in text
    assert "iperf3: error - unable to connect" in text


def test_cli_show_json_and_filters(store, tmp_path, capsys):
    db = str(tmp_path / "study.sqlite")
    assert main(["batch", "show", db, "--where", "cc=cubic", "--where", "cc=bbr", "--where", "size=1000KB",
                 "--format", "json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert len(runs) == 2 * 2 * 3 and {r["params"]["size"] for r in runs} == {"1MB"}  # 1000KB is 1MB
    assert main(["batch", "show", db, "--status", "failed", "--attempts"]) == 0
    out = capsys.readouterr().out
    assert "attempt 1: failed" in out and "unable to connect" in out
    assert main(["batch", "show", db, "--where", "ccs=bbr"]) == 2
    assert "did you mean `cc`?" in capsys.readouterr().err


def test_cli_plot_default_outputs_next_to_the_source(store, tmp_path, capsys):
    db = str(tmp_path / "study.sqlite")
    assert main(["batch", "plot", db, "client.retransmit_rate", "--x", "size", "--lines", "cc"]) == 0
    out = capsys.readouterr().out.split()
    assert out == [str(tmp_path / "study-client-retransmit_rate.png"), str(tmp_path / "study-client-retransmit_rate.svg")]
    svg = (tmp_path / "study-client-retransmit_rate.svg").read_text()
    assert "client.retransmit_rate (%)" in svg  # a rate is drawn in percent


def test_cli_show_without_results_says_what_to_do(tmp_path, capsys):
    exp = tmp_path / "sweep.yaml"
    exp.write_text("topology: p.rtn\nworkload: [{endpoint: left, command: 'true'}]\n")
    assert main(["batch", "show", str(exp)]) == 2
    err = capsys.readouterr().err
    assert "no results yet" in err and f"rattan batch {exp}" in err


def test_the_sweep_order_wins_over_the_order_runs_finished(tmp_path):
    s = open_store(tmp_path / "o.sqlite")
    try:
        for cc in ("reno", "bbr", "cubic"):  # finished in this order
            s.record(_result(cc, "1MB", "shaper", 1))
        runs = report.rows(s, "study")
        assert list(report.series(runs, "client.goodput_bps", "size", lines="cc")[(None, None)]) == \
            ["reno", "bbr", "cubic"]
        ordered = report.series(runs, "client.goodput_bps", "size", lines="cc",
                                order={"cc": ["cubic", "bbr", "reno"]})
        assert list(ordered[(None, None)]) == ["cubic", "bbr", "reno"]
    finally:
        s.close()


def test_an_interval_of_a_metric_that_cannot_be_negative_stops_at_zero(tmp_path):
    s = open_store(tmp_path / "c.sqlite")
    try:
        for seed, rate in ((1, 0.0), (2, 0.0), (3, 0.3)):
            r = _result("bbr", "1MB", "shaper", seed)
            r["metrics"]["client.retransmit_rate"] = rate
            s.record(r)
        (p,) = report.series(report.rows(s, "study"), "client.retransmit_rate", "size")[(None, None)][None]
        assert report.mean_ci([0.0, 0.0, 0.3])[1] < 0 and p.low == 0.0 and p.high > 0.3
    finally:
        s.close()
