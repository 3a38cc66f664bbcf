"""A plugin cell installed through the `rattan.cells` entry point is checked, listed and exported."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT

PLUGIN_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "wifi_jitter",
    "description": "Test plugin: Wi-Fi contention jitter.",
    "type": "object",
    "properties": {
        "slot": {"type": "integer", "minimum": 1, "x-unit": "time", "x-runtime": True,
                 "description": "Contention slot length in ns."},
        "stations": {"type": "integer", "minimum": 1, "default": 1, "description": "Competing stations."},
    },
    "required": ["slot"],
    "additionalProperties": False,
    "x-rattan": {"outputs": 1, "queue": True, "label": ["slot"]},
}


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory):
    """A tiny distribution installed (package + .dist-info with entry_points.txt) on PYTHONPATH.

    This is the layout pip writes for a wheel; building one here would need
    network access for build dependencies, so the test lays it out directly.
    """
    base = tmp_path_factory.mktemp("plugin")
    site = base / "site"
    pkg = site / "rattan_wifi"
    (pkg / "wifi_jitter").mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent("""
        from pathlib import Path
        def cells():
            return [str(Path(__file__).parent / "wifi_jitter")]
    """))
    (pkg / "wifi_jitter" / "cell.schema.json").write_text(json.dumps(PLUGIN_SCHEMA))
    info = site / "rattan_wifi-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rattan-wifi\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text("[rattan.cells]\nwifi = rattan_wifi:cells\n")
    (info / "RECORD").write_text("")
    env = dict(os.environ, PYTHONPATH=str(site) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return env, base


def rattan(env, *args, cwd=None):
    return subprocess.run([sys.executable, "-m", "rattan", *args], env=env, cwd=cwd or ROOT,
                          capture_output=True, text=True)


def test_plugin_is_listed(plugin_env):
    env, _ = plugin_env
    r = rattan(env, "cells")
    assert r.returncode == 0
    line = next(l for l in r.stdout.splitlines() if l.startswith("wifi_jitter"))
    assert "plugin" in line and "Wi-Fi contention" in line
    r = rattan(env, "cells", "wifi_jitter")
    assert "slot: time (required, runtime)" in r.stdout


def test_plugin_is_checked_and_exported(plugin_env):
    env, base = plugin_env
    good = base / "good.rtn"
    good.write_text("channel c {\n left -> wifi_jitter { slot = 9us, stations = 4 } -> right\n"
                    " right -> left\n}\n")
    r = rattan(env, "compile", str(good))
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    cell = plan["channels"][0]["cells"][0]
    assert cell["type"] == "wifi_jitter"
    assert cell["config"] == {"slot": 9000, "stations": 4}
    bad = base / "bad.rtn"
    bad.write_text("channel c {\n left -> wifi_jitter { slot = 9, statons = 4 } -> right\n right -> left\n}\n")
    r = rattan(env, "check", str(bad))
    assert r.returncode == 1
    assert "RTN013" in r.stderr and "did you mean `stations`" in r.stderr
    assert "RTN021" in r.stderr and "9ms" in r.stderr


def test_plugin_annotations_reach_dot(plugin_env):
    """`queue` and `label` in the plugin's x-rattan: DOT draws its cell as a queue, with its slot."""
    env, base = plugin_env
    good = base / "dot.rtn"
    good.write_text("channel c {\n left -> wifi_jitter { slot = 9us } -> right\n right -> left\n}\n")
    r = rattan(env, "compile", "--emit", "dot", str(good))
    assert r.returncode == 0, r.stderr
    node = next(line for line in r.stdout.splitlines() if '"c/wifi_jitter_1"' in line)
    assert "peripheries=2" in node and "wifi_jitter\\n9us" in node, node
    r = rattan(env, "cells")
    assert "unknown x-rattan" not in r.stdout + r.stderr


def test_plugin_schema_is_exported(plugin_env):
    env, _ = plugin_env
    r = rattan(env, "cells", "--json")
    data = json.loads(r.stdout)
    assert data["cells"]["wifi_jitter"]["properties"]["slot"]["x-unit"] == "time"
    assert "bw" in data["cells"]


def test_without_plugin_type_is_unknown():
    env = dict(os.environ)
    r = subprocess.run([sys.executable, "-m", "rattan", "cells", "wifi_jitter"], env=env,
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2
