"""Experiment files of `rattan batch`: diagnostics (every RTX code, located, with help) and the sweep.

Each `data/experiments/RTXnnn_description.{yaml,json}` is one bad file; its `.expected` holds the
rendered diagnostics as `rattan batch` prints them, loaded from the repository root so that paths
are stable (`RATTAN_REGEN=1 pytest tests/batch/test_experiment.py` rewrites them: review the diff).
The table SPANS below says, for each, the code, the text its span covers and what its help says.
No root needed: loading compiles the topologies but starts nothing.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from rattan.batch import experiment
from rattan.batch.experiment import ExperimentError, load

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data" / "experiments"
BAD = sorted(p for p in DATA.iterdir() if p.name.startswith("RTX") and p.suffix in (".yaml", ".json"))
REGEN = os.environ.get("RATTAN_REGEN") == "1"
NAME = re.compile(r"^(RTX\d{3})_[a-z0-9_]+$")

# file stem -> (the one diagnostic's code, the source text under its span, a word of its message, of its help)
SPANS = {
    "RTX001_bad_yaml": ("RTX001", '"', "end of stream while scanning a quoted scalar", None),
    "RTX001_bad_json": ("RTX001", "]", "expected ',' or '}'", None),
    "RTX002_unknown_key": ("RTX002", "topolgy", "unknown key `topolgy`", "did you mean `topology`?"),
    "RTX002_unknown_step_key": ("RTX002", "extractor", "unknown key `extractor`", "did you mean `extract`?"),
    "RTX002_wrong_type": ("RTX002", "three", "is not an integer", "runs per combination and seed"),
    "RTX002_number_as_text": ("RTX002", "1e-3", "is not a number", "write 0.001"),
    "RTX002_value_twice": ("RTX002", "2", "2 is given twice", "give `repetitions`"),
    "RTX002_seed_axis": ("RTX002", "seed", "give `seeds`", None),
    "RTX002_only_background": ("RTX002", "- endpoint: right", "in the background", "no `background: true`"),
    "RTX003_unknown_placeholder": ("RTX003", "{cuont}", "`{cuont}`",
                                   "did you mean `{count}`?"),
    "RTX004_let_not_axis": ("RTX004", "rtae", "`rtae`", "did you mean `rate`?"),
    "RTX005_missing_topology": ("RTX005", "paths.rtn", "`paths.rtn`", "relative to the experiment file"),
    "RTX006_let_value_refused": ("RTX006", "fast", "rate = fast: path.rtn:8:26: error[RTN011]", "`rate` must be a rate"),
    "RTX007_no_endpoint": ("RTX007", "lfet", "no endpoint `lfet`", "did you mean `left`?"),
    "RTX008_bad_duration": ("RTX008", "90 parsecs", "not a time", "e.g. 90s or 600s"),
    "RTX009_unknown_extractor": ("RTX009", "pnig", "no extractor `pnig`", "did you mean `ping`?"),
    "RTX010_plot_unknown_axis": ("RTX010", "conut", "`conut` is no axis", "did you mean `count`?"),
    "RTX011_no_topology": ("RTX011", "sweep:", "no topology", None),
    "RTX012_unknown_cell": ("RTX012", "dwon", "no cell `dwon`", "did you mean `down`?"),
}


def load_from_root(path: Path, monkeypatch) -> experiment.Experiment:
    monkeypatch.chdir(ROOT)
    return load(path.relative_to(ROOT).as_posix())


def failure(path: Path, monkeypatch) -> ExperimentError:
    with pytest.raises(ExperimentError) as info:
        load_from_root(path, monkeypatch)
    return info.value


def span_text(path: Path, d) -> str:
    """The source text a library Diagnostic's span covers (lines and columns are 1-based characters)."""
    lines = path.read_text(encoding="utf-8").split("\n")
    if d.line == d.end_line:
        return lines[d.line - 1][d.column - 1:d.end_column - 1]
    return lines[d.line - 1][d.column - 1:]  # a node over several lines: its first line


def test_every_code_has_a_bad_file_and_every_bad_file_a_known_code():
    codes = set()
    for p in BAD:
        m = NAME.match(p.stem)
        assert m, f"{p.name}: name bad files RTXnnn_short_description"
        assert m.group(1) in experiment.CODES, p.name
        codes.add(m.group(1))
    assert codes == set(experiment.CODES)
    assert set(SPANS) == {p.stem for p in BAD}


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_bad_file_gives_its_code_at_the_right_node_with_help(path, monkeypatch):
    code, under, message, help = SPANS[path.stem]
    err = failure(path, monkeypatch)
    assert [d.code for d in err.diagnostics] == [code], str(err)
    d = err.diagnostics[0]
    assert d.severity == "error" and d.file == path.relative_to(ROOT).as_posix()
    text = span_text(path, d)
    assert (text == under) if d.line == d.end_line else text.startswith(under), (text, under)
    assert message in d.message, d.message
    if help is not None:
        assert any(help in h for h in d.help), d.help
    assert experiment.CODES[code]  # the table has a title for it


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_bad_file_renders_as_its_golden(path, monkeypatch):
    got = str(failure(path, monkeypatch))
    expected = path.with_suffix(".expected")
    if REGEN:
        expected.write_text(got, encoding="utf-8")
        return
    assert expected.exists(), f"no {expected.name}: run with RATTAN_REGEN=1 and review it"
    assert got == expected.read_text(encoding="utf-8")


def test_every_finding_is_reported_at_once(tmp_path):
    # three independent mistakes: each gets its own diagnostic, in the order of the file
    shutil.copy(DATA / "path.rtn", tmp_path)
    (tmp_path / "e.yaml").write_text(
        "topology: path.rtn\nsweep:\n  count: [2]\ntimeout: soon\nworkload:\n"
        "  - endpoint: lfet\n    command: ping -c {cuont} x\n    extract: pnig\n")
    with pytest.raises(ExperimentError) as info:
        load(str(tmp_path / "e.yaml"))
    assert [d.code for d in info.value.diagnostics] == ["RTX008", "RTX003", "RTX009"]
    # RTX007 needs the topology compiled, which waits for the file to be otherwise right
    (tmp_path / "e.yaml").write_text((tmp_path / "e.yaml").read_text().replace("soon", "5s")
                                     .replace("{cuont}", "{count}").replace("pnig", "ping"))
    with pytest.raises(ExperimentError) as info:
        load(str(tmp_path / "e.yaml"))
    assert [d.code for d in info.value.diagnostics] == ["RTX007"]


def test_a_refused_value_anywhere_in_the_sweep_is_found(tmp_path):
    # not only the first combination's lets are compiled: the last value of the last axis too
    shutil.copy(DATA / "path.rtn", tmp_path)
    (tmp_path / "e.yaml").write_text(
        "topology: path.rtn\nsweep:\n  rate: [10Mbps, 20Mbps]\n  delay: [5ms, 10ms, 3kg]\nlets: [rate, delay]\n"
        "workload:\n  - endpoint: left\n    command: ping -c 1 $RATTAN_RIGHT_IP\n")
    with pytest.raises(ExperimentError) as info:
        load(str(tmp_path / "e.yaml"))
    (d,) = info.value.diagnostics
    assert d.code == "RTX006" and "delay = 3kg" in d.message
    assert (d.line, d.column) == (4, 22)


# -- a good file and its sweep

GOOD = DATA / "good.yaml"


def test_the_good_file_loads_with_every_key():
    exp = load(str(GOOD))
    assert exp.name == "good" and exp.topology == "path.rtn" and exp.channel is None
    assert exp.axes == {"rate": ["10Mbps", "50Mbps"], "delay": ["5ms", "20ms", "40ms"], "count": [2, 3]}
    assert exp.lets == {"rate": "{rate}", "delay": "{delay} / 2"}
    assert exp.seeds == [1, 7] and exp.repetitions == 2
    assert [(s.endpoint, s.name, s.background, s.extract) for s in exp.workload] == [
        ("right", "server", True, None), ("left", "ping", False, "ping"), ("left", "transfer", False, "iperf3")]
    assert exp.telemetry == ["up", "down"] and exp.packet_log is False
    assert exp.resources == {"cores": 1, "instances": 1}
    assert exp.timeout_s == 90.0 and exp.retries == 2
    assert exp.database == str(DATA / "results" / "good.sqlite")  # relative to the file, not the cwd
    (plot,) = exp.plots
    assert plot["output"] == [str(DATA / "good-goodput.png"), str(DATA / "good-goodput.svg")]
    assert plot["scale"] == 1e-6 and plot["facet"] == "count"


def test_defaults(tmp_path):
    shutil.copy(DATA / "path.rtn", tmp_path)
    (tmp_path / "mine.yaml").write_text("topology: path.rtn\nworkload:\n"
                                        "  - {endpoint: left, command: ping -c 1 $RATTAN_RIGHT_IP}\n")
    exp = load(str(tmp_path / "mine.yaml"))
    assert exp.name == "mine" and exp.seeds == [1] and exp.repetitions == 1
    assert exp.timeout_s == experiment.DEFAULT_TIMEOUT_S and exp.retries == experiment.DEFAULT_RETRIES
    assert exp.database == str(tmp_path / "mine.sqlite")
    assert load(str(tmp_path / "mine.yaml"), database="postgresql://u@h/db").database == "postgresql://u@h/db"
    (job,) = exp.jobs()
    assert job.params == {"seed": 1, "repetition": 0, "topology": "path.rtn"} and job.lets == {}
    assert exp.workload[0].name == "left"  # one command of an endpoint: named after it


def test_the_sweep_is_the_product_of_axes_seeds_and_repetitions():
    exp = load(str(GOOD))
    jobs = exp.jobs()
    assert len(jobs) == 2 * 3 * 2 * 2 * 2
    assert len({j.key for j in jobs}) == len(jobs)
    # every combination is there once per seed and repetition, the first axis varying slowest
    seen = [(j.params["rate"], j.params["delay"], j.params["count"], j.seed, j.repetition) for j in jobs]
    assert seen == [(r, d, c, s, k) for r in ["10Mbps", "50Mbps"] for d in ["5ms", "20ms", "40ms"]
                    for c in [2, 3] for s in [1, 7] for k in range(2)]
    assert all(j.params["seed"] == j.seed and j.params["repetition"] == j.repetition for j in jobs)


def test_keys_are_stable_across_loads_and_places(tmp_path):
    keys = [j.key for j in load(str(GOOD)).jobs()]
    assert keys == [j.key for j in load(str(GOOD)).jobs()]
    # the same file elsewhere (another checkout, another machine): the same keys, so resume works
    for name in ("good.yaml", "path.rtn"):
        shutil.copy(DATA / name, tmp_path)
    assert keys == [j.key for j in load(str(tmp_path / "good.yaml")).jobs()]
    # a value changed: that run's key changes, the others stay
    text = (tmp_path / "good.yaml").read_text().replace("count: [2, 3]", "count: [2, 4]")
    (tmp_path / "good.yaml").write_text(text)
    changed = [j.key for j in load(str(tmp_path / "good.yaml")).jobs()]
    same = [a == b for a, b in zip(keys, changed)]
    assert same.count(False) == len(keys) // 2 and same.count(True) == len(keys) // 2


def test_placeholders_are_filled_in_commands_and_lets():
    job = next(j for j in load(str(GOOD)).jobs()
               if j.params == {"rate": "50Mbps", "delay": "40ms", "count": 3, "seed": 7, "repetition": 1,
                               "topology": "path.rtn"})
    server, ping, transfer = job.workload
    assert server["command"] == "iperf3 -s -1 -p 5201" and server["background"] is True
    assert ping["command"] == ["ping", "-c", "3", "-i", "0.2", "$RATTAN_RIGHT_IP"]  # a list stays a list
    # `${VAR}` and `$VAR` are the shell's
    assert transfer["command"] == ("iperf3 -c ${RATTAN_RIGHT_IP} -p 5201 -n 100K -J --logfile /dev/stdout "
                                   "# rate=50Mbps seed=7")
    assert job.lets == {"rate": "50Mbps", "delay": "40ms / 2"}
    assert job.topology == str(DATA / "path.rtn") and job.timeout_s == 90.0
    assert job.telemetry == ["up", "down"] and job.packet_log_dir is None


def test_fill_leaves_the_shell_alone():
    params = {"size": "1MB", "n": 3, "on": True}
    assert experiment.fill("{size} ${size} $size {n}x{on}", params) == "1MB ${size} $size 3xtrue"
    assert experiment.fill_command(["a{n}", "${HOME}"], params) == ["a3", "${HOME}"]


def test_lets_as_a_list_of_axes(tmp_path):
    shutil.copy(DATA / "path.rtn", tmp_path)
    (tmp_path / "e.yaml").write_text(
        "topology: path.rtn\nsweep:\n  rate: [10Mbps, 20Mbps]\n  cc: [cubic, bbr]\nlets: [rate]\n"
        "workload:\n  - endpoint: left\n    command: sysctl net.ipv4.tcp_congestion_control={cc}\n")
    jobs = load(str(tmp_path / "e.yaml")).jobs()
    assert [(j.lets, j.workload[0]["command"]) for j in jobs] == [
        ({"rate": "10Mbps"}, "sysctl net.ipv4.tcp_congestion_control=cubic"),
        ({"rate": "10Mbps"}, "sysctl net.ipv4.tcp_congestion_control=bbr"),
        ({"rate": "20Mbps"}, "sysctl net.ipv4.tcp_congestion_control=cubic"),
        ({"rate": "20Mbps"}, "sysctl net.ipv4.tcp_congestion_control=bbr")]


def test_the_topology_axis(tmp_path):
    for name in ("path.rtn", "other.rtn"):
        shutil.copy(DATA / name, tmp_path)
    (tmp_path / "e.yaml").write_text(
        "sweep:\n  topology: [path.rtn, other.rtn]\n  rate: [5Mbps, 7Mbps]\nlets: {rate: '{rate}'}\n"
        "workload:\n  - endpoint: left\n    command: echo {topology} {rate}\n")
    exp = load(str(tmp_path / "e.yaml"))
    assert exp.topology is None
    jobs = exp.jobs()
    assert [(os.path.basename(j.topology), j.params["topology"], j.workload[0]["command"]) for j in jobs] == [
        ("path.rtn", "path.rtn", "echo path.rtn 5Mbps"), ("path.rtn", "path.rtn", "echo path.rtn 7Mbps"),
        ("other.rtn", "other.rtn", "echo other.rtn 5Mbps"), ("other.rtn", "other.rtn", "echo other.rtn 7Mbps")]
    assert all(os.path.isabs(j.topology) for j in jobs)
    assert len({j.key for j in jobs}) == 4
    # each topology of the axis is checked: a workload endpoint only one of them has is refused
    (tmp_path / "other.rtn").write_text((tmp_path / "other.rtn").read_text().replace("left", "client"))
    with pytest.raises(ExperimentError) as info:
        load(str(tmp_path / "e.yaml"))
    (d,) = info.value.diagnostics
    assert d.code == "RTX007" and "`other.rtn`" in d.message and (d.line, d.column) == (6, 15)


def test_seeds_given_as_a_list_or_a_count(tmp_path):
    shutil.copy(DATA / "path.rtn", tmp_path)
    base = "topology: path.rtn\nworkload:\n  - {endpoint: left, command: 'ping -c 1 x'}\n"
    (tmp_path / "a.yaml").write_text(base + "seeds: 3\nrepetitions: 2\n")
    (tmp_path / "b.yaml").write_text(base + "seeds: [5, 11]\n")
    assert [(j.seed, j.repetition) for j in load(str(tmp_path / "a.yaml")).jobs()] == [
        (1, 0), (1, 1), (2, 0), (2, 1), (3, 0), (3, 1)]
    assert [j.seed for j in load(str(tmp_path / "b.yaml")).jobs()] == [5, 11]


def test_a_json_experiment_file(tmp_path):
    shutil.copy(DATA / "path.rtn", tmp_path)
    (tmp_path / "e.json").write_text('{"topology": "path.rtn", "sweep": {"n": [1, 2]}, "workload": '
                                     '[{"endpoint": "left", "command": ["ping", "-c", "{n}", "x"]}]}')
    assert [j.workload[0]["command"][2] for j in load(str(tmp_path / "e.json")).jobs()] == ["1", "2"]
