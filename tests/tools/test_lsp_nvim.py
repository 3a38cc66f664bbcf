"""Headless Neovim as a real, third-party client of `rattan lsp` (tests/tools/nvim/lsp_client.lua).

The editor opens a file with errors, gets the diagnostics, applies the quick fixes, renames a
cell used in a chain and a timeline, renames from that timeline the inner cell of a compound
type another file defines (both files change), is refused a rename of a built-in, formats,
and writes the files; this test checks the text they end with. Skipped without `nvim` (CI
installs Debian's `neovim`).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

NVIM = shutil.which("nvim")
HERE = os.path.dirname(__file__)

LIB = """\
let base = 10ms
cell type link(rate: rate, delay: time = 1ms) {
    cell bw: bw { rate = rate }
    in -> bw -> delay { delay = delay + base } -> out
}
"""

MAIN = """\
import "lib.rtn"
let rtt = 20ms
channel c {
    cell   up: link {rate = 10Mbps,delay=rtt}
    cell down: bw { rate = 5Mbps }
    left -> upp -> right
    right -> down -> delay { delay = rtt } -> left
    at 5s { up.bw.rat = 1Mbps }
}
"""

MAIN_AFTER = """\
import "lib.rtn"
let rtt = 20ms
channel c {
    cell uplink: link { rate = 10Mbps, delay = rtt }
    cell down: bw { rate = 5Mbps }
    left -> uplink -> right
    right -> down -> delay { delay = rtt } -> left
    at 5s { uplink.shaper.rate = 1Mbps }
}
"""

LIB_AFTER = LIB.replace("cell bw:", "cell shaper:").replace("in -> bw ->", "in -> shaper ->")


@pytest.mark.skipif(NVIM is None, reason="nvim is not installed (Debian package `neovim`; CI installs it)")
def test_neovim_fixes_renames_across_an_import_and_formats(tmp_path):
    (tmp_path / "lib.rtn").write_text(LIB)
    (tmp_path / "main.rtn").write_text(MAIN)
    log = tmp_path / "nvim.log"
    env = dict(os.environ, RATTAN_NVIM_DIR=str(tmp_path), RATTAN_NVIM_LOG=str(log), RATTAN_PYTHON=sys.executable,
               HOME=str(tmp_path), XDG_STATE_HOME=str(tmp_path / "state"), XDG_DATA_HOME=str(tmp_path / "data"))
    r = subprocess.run([NVIM, "--headless", "--clean", "-n", "-c", f"luafile {HERE}/nvim/lsp_client.lua"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    steps = log.read_text().splitlines() if log.exists() else []
    assert r.returncode == 0, f"nvim exited {r.returncode}: {steps}\n{r.stderr[-2000:]}"
    assert steps[0].startswith("diagnostics RTN040") and "RTN060" in steps[0], steps
    assert "quickfix Replace `upp` with `up`" in steps
    assert "quickfix Replace `up.bw.rat` with `up.bw.rate`" in steps
    assert "diagnostics after fixes 0" in steps
    refused = next(s for s in steps if s.startswith("refused"))
    assert "`delay` is a built-in cell type" in refused, steps
    assert (tmp_path / "main.rtn").read_text() == MAIN_AFTER
    assert (tmp_path / "lib.rtn").read_text() == LIB_AFTER
