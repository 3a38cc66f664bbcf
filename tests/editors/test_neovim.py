"""The Neovim set-up of docs/editors.md, run in headless Neovim (Debian's `neovim` in CI).

The snippet is taken from the page itself, with `/path/to/rattan` replaced by this checkout.
A `.rtn` buffer must then have the filetype `rattan`, `commentstring` `# %s` with a working
`gcc`, `rattan fmt`'s indentation, and a highlight group on a keyword: from the Vim syntax file
with no parser installed, from tree-sitter after `:RattanBuildParser`.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT

NVIM = shutil.which("nvim")
pytestmark = pytest.mark.skipif(NVIM is None, reason="nvim is not installed (Debian package `neovim`; .ci/run installs it)")
CHECK = Path(__file__).with_name("nvim_check.lua")


def docs_snippet() -> str:
    doc = (ROOT / "docs" / "editors.md").read_text(encoding="utf-8")
    section = doc[doc.index("## Highlighting, comments and indentation"):]
    section = section[section.index("**Neovim** (0.7 and later)"):]
    block = re.search(r"```lua\n(.*?)```", section, re.S).group(1)
    return block.replace("/path/to/rattan", str(ROOT))


@pytest.fixture
def nvim(tmp_path):
    """Run headless Neovim with the docs' snippet as its only configuration, in a fresh home."""
    init = tmp_path / "init.lua"
    init.write_text(docs_snippet())
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_STATE_HOME": str(tmp_path / "state"),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}

    def run(*args: str, check_file: Path | None = None) -> dict:
        out = tmp_path / "out.json"
        out.unlink(missing_ok=True)
        cmd = [NVIM, "--headless", "-u", str(init), "-i", "NONE", "-n"]
        if check_file is not None:
            cmd += [str(check_file), "-c", f"luafile {CHECK}"]
        cmd += list(args) + ["-c", "qa!"]
        p = subprocess.run(cmd, env={**env, "RATTAN_NVIM_OUT": str(out)}, cwd=tmp_path,
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        if check_file is None:
            return {"stdout": p.stdout, "stderr": p.stderr}
        assert out.exists(), f"nvim wrote nothing: {p.stdout}{p.stderr}"
        return json.loads(out.read_text())
    run.data = tmp_path / "data"
    return run


def _rtn(tmp_path: Path) -> Path:
    f = tmp_path / "broadband.rtn"
    shutil.copy(EXAMPLES / "broadband.rtn", f)
    return f


def _common(r: dict) -> None:
    assert r["filetype"] == "rattan"
    assert r["commentstring"] == "# %s"
    assert (r["shiftwidth"], r["expandtab"]) == (4, True)
    assert r["original"] == "let rtt = 40ms"
    assert r["commented"] == "# let rtt = 40ms"     # `gcc`
    assert r["uncommented"] == r["original"]        # `gcc` again


def test_without_a_parser_the_syntax_file_highlights(nvim, tmp_path):
    r = nvim(check_file=_rtn(tmp_path))
    _common(r)
    assert r["treesitter"] is False
    assert r["syntax"] == "rattan"
    assert r["syntax_group"] in ("Keyword", "Statement")   # Keyword links to Statement


def test_after_build_parser_tree_sitter_highlights(nvim, tmp_path):
    if not (shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")):
        pytest.skip("no C compiler for :RattanBuildParser")
    built = nvim("-c", "RattanBuildParser")
    parser = nvim.data / "nvim" / "site" / "parser" / "rattan.so"
    assert parser.exists(), built
    r = nvim(check_file=_rtn(tmp_path))
    _common(r)
    assert r["treesitter"] is True
    assert r["syntax"] == ""                                 # the regex syntax is off ...
    assert r["syntax_group"] == ""
    assert set(r["treesitter_groups"]) & {"Keyword", "Statement"}, r   # ... tree-sitter colours


EXAMPLE_FILES = sorted(p for p in EXAMPLES.rglob("*.rtn") if "plugins" not in p.parts)


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_reindenting_gives_rattan_fmt_layout(nvim, tmp_path, path):
    """Every example is in `rattan fmt` style (CI checks it); `gg=G` on it with all indentation
    removed gives it back."""
    flat = tmp_path / path.name
    flat.write_text(re.sub(r"(?m)^[ \t]+", "", path.read_text(encoding="utf-8")))
    out = tmp_path / "reindented.rtn"
    nvim(str(flat), "-c", "normal gg=G", "-c", f"write! {out}")
    assert out.read_text(encoding="utf-8") == path.read_text(encoding="utf-8")


# -- Vim reads the same plugin (without tree-sitter)

VIM = shutil.which("vim")


@pytest.mark.skipif(VIM is None, reason="vim is not installed")
def test_vim_gets_filetype_comments_indentation_and_syntax(tmp_path):
    doc = (ROOT / "docs" / "editors.md").read_text(encoding="utf-8")
    line = re.search(r"`(set runtimepath\+=/path/to/rattan/editors/nvim)` in `vimrc`", doc).group(1)
    vimrc = tmp_path / "vimrc"
    vimrc.write_text(f"set nocompatible\n{line.replace('/path/to/rattan', str(ROOT))}\n"
                     "filetype plugin indent on\nsyntax on\n")
    lib = tmp_path / "links.rtn"
    lib.write_text(re.sub(r"(?m)^[ \t]+", "", (EXAMPLES / "lib" / "links.rtn").read_text()))
    out = tmp_path / "vim.json"
    script = (
        "let r = {'filetype': &filetype, 'commentstring': &commentstring}\n"
        "let n = search('^let ')\n"
        "let r.group = synIDattr(synIDtrans(synID(n, 1, 1)), 'name')\n"
        "execute 'normal ' . n . 'Ggcc'\n"
        "let r.commented = getline(n)\n"
        "normal gcc\n"
        "normal gg=G\n"
        "let r.text = join(getline(1, '$'), \"\\n\") . \"\\n\"\n"
        f"call writefile([json_encode(r)], '{out}')\n"
        "qa!\n")
    (tmp_path / "check.vim").write_text(script)
    subprocess.run([VIM, "-N", "-u", str(vimrc), "-i", "NONE", "-n", "-es", str(lib), "-S",
                    str(tmp_path / "check.vim")], env={**os.environ, "HOME": str(tmp_path)},
                   timeout=60, stdin=subprocess.DEVNULL, capture_output=True)
    r = json.loads(out.read_text())
    assert (r["filetype"], r["commentstring"]) == ("rattan", "# %s")
    assert r["group"] in ("Keyword", "Statement")
    assert r["commented"].startswith("# let fiber_km")
    assert r["text"] == (EXAMPLES / "lib" / "links.rtn").read_text()
