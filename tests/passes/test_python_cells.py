"""Python cells in the compiler: a Python cell compiles to the C cells it drives and a controller in
the plan; its parameters, inner configs and class are checked with diagnostics at the instance.
The test cells here serve the virtual-time and real-time tests too."""
from __future__ import annotations

import json
import random

from rattan import PythonCell
from rattan.compiler import compile_text
from rattan.plan import build_plan
from rattan.registry import Registry

HERE = "tests.passes.test_python_cells"


def schema(title: str, cls: str, props: dict, required=(), module: str = HERE, **meta) -> dict:
    """The cell.schema.json of a test Python cell (a time parameter `interval` gives the tick)."""
    props = {"interval": {"type": "integer", "minimum": 0, "x-unit": "time", "default": 10_000_000,
                          "description": "Tick period."}, **props}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title,
            "description": f"Test Python cell {title}.", "type": "object", "properties": props,
            "required": list(required), "additionalProperties": False,
            "x-rattan": {"python": f"{module}:{cls}", "tick": "interval", **meta}}


RATE = {"type": "integer", "minimum": 0, "x-unit": "rate", "description": "A rate."}
TIME = {"type": "integer", "minimum": 0, "x-unit": "time", "description": "A time."}


class Throttle(PythonCell):
    """A bw link whose rate drops to `to` at the first tick at or after `after`; records its ticks."""
    ticks: list[int] = []
    sets: list[tuple[str, object]] = []

    def inner(self, config):
        return [("link", "bw", {"rate": config["rate"]})]

    def start(self, config, seed):
        type(self).ticks, type(self).sets = [], []

    def tick(self, now_ns, cells):
        type(self).ticks.append(now_ns)
        if now_ns >= self.config["after"] and cells["link"].get("rate") != self.config["to"]:
            cells["link"].set("rate", self.config["to"])

    def set(self, name, value):
        type(self).sets.append((name, value, len(type(self).ticks)))  # and how many ticks came before
        super().set(name, value)


class Wander(PythonCell):
    """A delay drawn afresh at every tick from a seeded generator (determinism)."""

    def inner(self, config):
        return [("path", "delay", {"delay": 10_000_000}), ("link", "bw", {"rate": config["rate"]})]

    def start(self, config, seed):
        self.rng = random.Random(seed)

    def tick(self, now_ns, cells):
        cells["path"].set("delay", self.rng.randrange(5_000_000, 50_000_000))
        if cells["link"].counters().queued_packets > 3:
            cells["link"].set("rate", cells["link"].get("rate") // 2)


class Failing(PythonCell):
    def inner(self, config):
        return [("link", "bw", {"rate": config["rate"]})]

    def tick(self, now_ns, cells):
        if now_ns >= 30_000_000:
            raise ZeroDivisionError("model broke")


class BadInner(PythonCell):
    def inner(self, config):
        return [("link", "bw", {"rate": -5}), ("d", "delay", {})]


class Refuses(PythonCell):
    def inner(self, config):
        raise ValueError("rate too low for this model")


def registry(*schemas) -> Registry:
    reg = Registry()
    reg.load_builtins()
    for s in schemas:
        reg.add_cell(s, "plugin test-python-cells")
    return reg


THROTTLE = schema("throttle", "Throttle", {"rate": {**RATE, "x-runtime": True}, "after": {**TIME, "x-runtime": True},
                                           "to": RATE}, ["rate", "after", "to"])
WANDER = schema("wander", "Wander", {"rate": RATE}, ["rate"])
FAILING = schema("failing", "Failing", {"rate": RATE}, ["rate"])
BAD_INNER = schema("bad_inner", "BadInner", {})
REFUSES = schema("refuses", "Refuses", {})
MISSING = schema("missing", "Nowhere", {})
MISSING["x-rattan"]["python"] = "rattan_no_such_plugin.model:Cell"
ALL = registry(THROTTLE, WANDER, FAILING, BAD_INNER, REFUSES, MISSING)


def plan_of(text: str, reg: Registry = ALL) -> dict:
    comp = compile_text(text, registry=reg)
    assert comp.ok, [d.message for d in comp.diagnostics]
    return build_plan(comp.program, comp.sources, reg)


def errors_of(text: str, reg: Registry = ALL) -> list:
    comp = compile_text(text, registry=reg)
    return [d for d in comp.diagnostics if d.is_error]


THROTTLED = """channel c {
  cell t: throttle { rate = 20Mbps, after = 1s, to = 5Mbps }
  left -> t -> right
  right -> left
}
"""



def test_plan_names_inner_cells_and_lists_the_controller():
    plan = plan_of(THROTTLED)
    ch = plan["channels"][0]
    assert [c["name"] for c in ch["cells"]] == ["t.link"]
    assert ch["cells"][0]["config"] == {"rate": 20_000_000, "queue": {"kind": "infinite"}, "overhead": 0}
    assert ch["cells"][0]["origin"] == "t"
    assert {"from": "left", "port": 0, "to": "t.link"} in ch["links"]
    assert {"from": "t.link", "port": 0, "to": "right"} in ch["links"]
    (k,) = ch["controllers"]
    assert k == {"cell": "t", "type": "throttle", "class": f"{HERE}:Throttle", "tick_ns": 10_000_000,
                 "config": {"rate": 20_000_000, "after": 1_000_000_000, "to": 5_000_000, "interval": 10_000_000},
                 "cells": {"link": "t.link"}, "source": "<input>.rtn:2:3"}
    from jsonschema import Draft202012Validator
    from importlib import resources
    plan_schema = json.loads(resources.files("rattan.schemas").joinpath("plan.schema.json").read_text())
    Draft202012Validator(plan_schema).validate(plan)



def test_a_timeline_on_an_inner_cell_and_its_checks():
    plan = plan_of(THROTTLED.replace("  right -> left\n", "  right -> left\n  at 2s { t.link.rate = 1Mbps }\n"))
    assert plan["channels"][0]["timeline"][0]["cell"] == "t.link"
    errs = errors_of(THROTTLED.replace("  right -> left\n", "  right -> left\n  at 2s { t.to = 1Mbps }\n"))
    assert [d.code for d in errs] == ["RTN061"] and "throttle.to" in errs[0].message



def test_broken_python_cells_get_diagnostics_at_the_instance():
    errs = errors_of("channel c {\n  left -> missing {} -> right\n  right -> left\n}\n")
    assert [d.code for d in errs] == ["RTN012"]
    assert "rattan_no_such_plugin.model:Cell" in errs[0].message and "test-python-cells" in errs[0].message
    assert "ModuleNotFoundError" in errs[0].message
    text = "channel c {\n  cell b: bad_inner {}\n  left -> b -> right\n  right -> left\n}\n"
    errs = errors_of(text)
    msgs = sorted((d.code, d.message) for d in errs)
    assert [c for c, _ in msgs] == ["RTN014", "RTN022"], msgs
    assert "inner cell `link` (bw), `rate`" in msgs[1][1] and "inner cell `d` (delay)" in msgs[0][1]
    assert {text[d.span.start:d.span.end] for d in errs} == {"cell b: bad_inner {}"}  # the user's instance
    errs = errors_of("channel c {\n  left -> refuses {} -> right\n  right -> left\n}\n")
    assert [d.code for d in errs] == ["RTN025"] and "rate too low for this model" in errs[0].message


def test_params_are_checked_against_the_python_cells_schema():
    errs = errors_of(THROTTLED.replace("to = 5Mbps", "to = 5ms"))
    assert [d.code for d in errs] == ["RTN021"]
    errs = errors_of(THROTTLED.replace("to = 5Mbps", "tu = 5Mbps"))
    assert [d.code for d in errs] == ["RTN013"] and "`interval`, `rate`, `after`, `to`" in errs[0].help[0]
    errs = errors_of(THROTTLED.replace("rate = 20Mbps, ", "interval = 0s, rate = 20Mbps, "))
    assert [d.code for d in errs] == ["RTN022"] and "tick period" in errs[0].message


def test_a_python_cell_from_an_installed_plugin_is_listed_checked_and_simulated(tmp_path):
    """Through the `rattan.cells` entry point, as pip installs a distribution (laid out by hand, as
    tests/registry/test_plugins.py does: building a wheel would need the network)."""
    import os
    import subprocess
    import sys
    import textwrap
    from tests.conftest import ROOT
    site = tmp_path / "site"
    (site / "rattan_cellular" / "cellular").mkdir(parents=True)
    (site / "rattan_cellular" / "__init__.py").write_text(
        "from pathlib import Path\ndef cells():\n    return [str(Path(__file__).parent / 'cellular')]\n")
    (site / "rattan_cellular" / "model.py").write_text(textwrap.dedent("""
        from rattan import PythonCell
        class Cellular(PythonCell):
            def inner(self, config):
                return [("link", "bw", {"rate": config["light"]})]
            def tick(self, now_ns, cells):
                busy = cells["link"].counters().queued_packets > self.config["threshold"]
                cells["link"].set("rate", self.config["heavy"] if busy else self.config["light"])
    """))
    cell = schema("cellular", "Cellular", {"light": RATE, "heavy": RATE,
                                           "threshold": {"type": "integer", "minimum": 0, "default": 10,
                                                         "description": "Queued packets of a heavy load."}},
                  ["light", "heavy"], module="rattan_cellular.model")
    (site / "rattan_cellular" / "cellular" / "cell.schema.json").write_text(json.dumps(cell))
    info = site / "rattan_cellular-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rattan-cellular\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text("[rattan.cells]\ncellular = rattan_cellular:cells\n")
    (info / "RECORD").write_text("")
    env = dict(os.environ, PYTHONPATH=str(site) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    rattan = lambda *a: subprocess.run([sys.executable, "-m", "rattan", *a], env=env, cwd=ROOT,
                                       capture_output=True, text=True)
    r = rattan("cells", "cellular")
    assert r.returncode == 0 and "plugin rattan-cellular" in r.stdout and "light: rate (required)" in r.stdout
    f = tmp_path / "c.rtn"
    f.write_text("channel c {\n  cell radio: cellular { light = 5Mbps, heavy = 20Mbps }\n"
                 "  left -> radio -> right\n  right -> left\n}\n")
    r = rattan("sim", str(f), "--flow", "left->right:cbr:10Mbps", "--duration", "2s", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    # 10 Mbit/s offered to a 5 Mbit/s light capacity: the queue passes 10 packets and the model switches
    # to the heavy 20 Mbit/s at the next tick, then back: all of it gets through, give or take a queue
    assert doc["python_cells"]["radio"]["ticks"] == 200
    assert abs(doc["flows"][0]["received_bytes"] - doc["flows"][0]["sent_bytes"]) <= 25 * 1500
    f.write_text(f.read_text().replace("heavy = 20Mbps", "heavy = 20ms"))
    r = rattan("check", str(f))
    assert r.returncode == 1 and "error[RTN021]" in r.stderr


def test_the_example_of_docs_cells_python_works_as_written(tmp_path):
    """docs/cells-python.md's distribution, installed as pip lays it out (its entry point from its
    pyproject.toml), then its channel simulated as the doc says: all of 8 Mbit/s gets through."""
    import os
    import re
    import subprocess
    import sys
    import tomllib
    from tests.conftest import ROOT
    text = (ROOT / "docs" / "cells-python.md").read_text(encoding="utf-8")
    files = dict((m.group(1), m.group(2)) for m in re.finditer(r"^```\w+ file=(\S+)\n(.*?)^```$", text, re.M | re.S))
    assert set(files) == {"pyproject.toml", "rattan_loaded_link/loaded_link/cell.schema.json",
                          "rattan_loaded_link/__init__.py", "example.rtn"}
    site = tmp_path / "site"
    for name, body in files.items():
        path = (tmp_path if name.endswith((".toml", ".rtn")) else site) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    project = tomllib.loads(files["pyproject.toml"])["project"]
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    eps = project["entry-points"]["rattan.cells"]
    (info / "entry_points.txt").write_text("[rattan.cells]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()))
    env = dict(os.environ, PYTHONPATH=str(site) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    command = re.search(r"^\$ rattan (sim example\.rtn .*)$", text, re.M).group(1)
    argv = [a.strip("'") for a in command.split()] + ["--json"]
    r = subprocess.run([sys.executable, "-m", "rattan", *argv], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    flow = doc["flows"][0]
    assert doc["python_cells"]["radio"]["ticks"] == 2000
    # 5 Mbit/s (2 from 10 s) alone would leave 10 MB behind: the heavy capacity took the rest
    assert flow["sent_bytes"] - flow["received_bytes"] <= 40 * 1500  # at most a few tens of packets queue
    link = doc["series"]["cells"]["radio.link"]
    assert 10 <= min(link["queued_packets"][5:]) and max(link["queued_packets"]) <= 40  # near its threshold
    assert set(link["rate_bps"][:99]) <= {5e6, 20e6} and set(link["rate_bps"][99:]) <= {2e6, 20e6}  # from 10 s


def test_a_python_cell_inside_a_compound_cell_and_in_the_ir_dump():
    from rattan.ir.printer import program_text
    text = """cell type shaped(r: rate) {
  cell t: throttle { rate = r, after = 1s, to = 5Mbps }
  in -> t -> delay { delay = 5ms } -> out
}
channel c {
  cell up: shaped { r = 20Mbps }
  left -> up -> right
  right -> left
  at 2s { up.t.after = 3s }
}
"""
    ch = plan_of(text)["channels"][0]
    assert [c["name"] for c in ch["cells"]] == ["up.t.link", "up.delay"]
    assert ch["controllers"][0]["cell"] == "up.t" and ch["controllers"][0]["cells"] == {"link": "up.t.link"}
    assert ch["timeline"][0]["cell"] == "up.t"
    dump = program_text(compile_text(text, registry=ALL).program)
    assert f"  python up.t: throttle {HERE}:Throttle tick 10000000 cells link=up.t.link " in dump
