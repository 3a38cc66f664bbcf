"""The Neovim language server set-up of docs/editors.md, run in headless Neovim (Debian's 0.7 in
CI): the snippet from the page, with `rattan` on PATH, gives a `.rtn` file the compiler's
diagnostics, a Rattan TOML document a Bw cell's keys, and leaves other TOML files alone."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rattan.frontends.upstream import _CELL_KEYS
from tests.conftest import ROOT

NVIM = shutil.which("nvim")
CHECK = Path(__file__).with_name("nvim_lsp_check.lua")


def docs_lsp_snippet() -> str:
    doc = (ROOT / "docs" / "editors.md").read_text(encoding="utf-8")
    section = doc[doc.index("## Setting it up"):]
    section = section[section.index("**Neovim** (0.7 and later"):]
    return re.search(r"```lua\n(.*?)```", section, re.S).group(1).replace("/path/to/rattan", str(ROOT))


def test_the_snippet_uses_the_plugins_setup_for_every_neovim():
    assert 'require("rattan").setup_lsp()' in docs_lsp_snippet()


@pytest.mark.skipif(NVIM is None, reason="nvim is not installed (Debian package `neovim`; .ci/run installs it)")
def test_neovim_gets_rattan_lsp_in_rtn_files_and_rattan_toml_documents_only(tmp_path):
    (tmp_path / "init.lua").write_text(docs_lsp_snippet())
    (tmp_path / "broken.rtn").write_text("channel c {\n    left -> dealy { delay = 5ms } -> right\n}\n")
    (tmp_path / "path.rattan.toml").write_text('[cells.c]\ntype = "Bw"\n\n')
    (tmp_path / "Cargo.toml").write_text('[package]\nname = "x"\n')
    out = tmp_path / "out.json"
    bin_dir = str(Path(sys.executable).parent)  # where `pip install` put `rattan`
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_STATE_HOME": str(tmp_path / "state"),
           "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
           "RATTAN_NVIM_DIR": str(tmp_path), "RATTAN_NVIM_OUT": str(out)}
    p = subprocess.run([NVIM, "--headless", "-u", str(tmp_path / "init.lua"), "-i", "NONE", "-n",
                        "-c", f"luafile {CHECK}"], env=env, cwd=tmp_path, capture_output=True, text=True,
                       timeout=120, stdin=subprocess.DEVNULL)
    assert out.exists(), f"nvim wrote nothing: {p.stdout}{p.stderr}"
    r = json.loads(out.read_text())
    assert r.get("error") is None, r
    assert r["rtn_clients"] == 1 and r["rtn_diagnostics"], r
    assert r["toml_clients"] == 1, r
    assert sorted(r["toml_labels"]) == sorted(_CELL_KEYS["Bw"]), r
    assert r["other_clients"] == 0, r


STAND_IN_START = """\
-- Neovim 0.8+'s vim.lsp.start, recorded (CI's Neovim is 0.7, which has only start_client)
_G.started = {}
vim.lsp.start = function(config, opts)
  table.insert(_G.started, { name = config.name, cmd = config.cmd, root = config.root_dir,
                             file = vim.fn.fnamemodify(vim.api.nvim_buf_get_name(opts.bufnr), ':t') })
end
"""


@pytest.mark.skipif(NVIM is None, reason="nvim is not installed (Debian package `neovim`; .ci/run installs it)")
def test_from_neovim_0_8_setup_lsp_hands_each_buffer_to_vim_lsp_start(tmp_path):
    (tmp_path / "init.lua").write_text(STAND_IN_START + docs_lsp_snippet())
    for name in ["a.rtn", "rattan.yaml", "compose.yaml"]:
        (tmp_path / name).write_text("")
    out = tmp_path / "started.json"
    cmds = [c for name in ["a.rtn", "rattan.yaml", "compose.yaml"] for c in ("-c", f"edit {tmp_path / name}")]
    subprocess.run([NVIM, "--headless", "-u", str(tmp_path / "init.lua"), "-i", "NONE", "-n", *cmds,
                    "-c", f"lua vim.fn.writefile({{vim.fn.json_encode(_G.started)}}, '{out}')", "-c", "qa!"],
                   env={**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")},
                   cwd=tmp_path, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    started = json.loads(out.read_text())
    assert [s["file"] for s in started] == ["a.rtn", "rattan.yaml"], started
    for s in started:
        assert (s["name"], s["cmd"], s["root"]) == ("rattan", ["rattan", "lsp"], str(tmp_path))


def test_the_plugins_document_names_are_the_vscode_extensions():
    """One list of Rattan TOML/YAML names: the VS Code manifest's schema contributions."""
    lua = (ROOT / "editors" / "nvim" / "lua" / "rattan" / "init.lua").read_text()
    names = re.findall(r"'([^']+)'", re.search(r"M\.document_patterns = \{(.*?)\}", lua).group(1))
    contributes = json.loads((ROOT / "editors" / "vscode" / "package.json").read_text())["contributes"]
    globs = [g for r in contributes["yamlValidation"] + contributes["tomlValidation"] for g in r["fileMatch"]]
    assert sorted(names) == sorted(globs)
