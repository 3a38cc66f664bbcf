"""The Helix set-up: editors/helix/languages.toml is the one docs/editors.md shows, is valid TOML
of the shape Helix reads, and names files that exist; its queries are the grammar's, renamed by
editors/helix/build_queries.py; `hx --health rattan` where Helix is installed (it is not packaged
for Debian 12, so CI checks only the rest)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib

import pytest

from tests.conftest import ROOT

HELIX = ROOT / "editors" / "helix"


def docs_toml() -> str:
    doc = (ROOT / "docs" / "editors.md").read_text(encoding="utf-8")
    section = doc[doc.index("## Highlighting, comments and indentation"):]
    section = section[section.index("**Helix**"):]
    return re.search(r"```toml\n(.*?)```", section, re.S).group(1)


def test_languages_toml_is_the_documented_one():
    assert tomllib.loads(docs_toml()) == tomllib.loads((HELIX / "languages.toml").read_text())


def test_languages_toml_starts_rattan_lsp_for_rtn_files():
    conf = tomllib.loads((HELIX / "languages.toml").read_text())
    (lang,) = conf["language"]
    assert lang["name"] == "rattan" and lang["file-types"] == ["rtn"]
    assert lang["comment-token"] == "#"
    assert lang["indent"] == {"tab-width": 4, "unit": "    "}
    (server,) = lang["language-servers"]
    assert conf["language-server"][server] == {"command": "rattan", "args": ["lsp"]}
    (grammar,) = conf["grammar"]
    assert grammar["name"] == lang["name"]
    assert grammar["source"]["path"].endswith("/editors/tree-sitter-rattan")
    grammar_dir = ROOT / "editors" / "tree-sitter-rattan"
    assert (grammar_dir / "src" / "parser.c").is_file() and (grammar_dir / "src" / "scanner.c").is_file()


def test_helix_has_the_queries_it_reads():
    names = {p.name for p in (HELIX / "queries" / "rattan").glob("*.scm")}
    assert {"highlights.scm", "indents.scm", "locals.scm", "textobjects.scm"} <= names


def test_helix_queries_are_what_build_queries_writes_from_the_grammar_s():
    r = subprocess.run([sys.executable, str(HELIX / "build_queries.py"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_build_queries_renames_captures_and_refuses_one_it_does_not_know():
    sys.path.insert(0, str(HELIX))
    try:
        import build_queries
    finally:
        sys.path.remove(str(HELIX))
    text = '; nvim header\n(number) @number\n["}"] @indent.end @indent.branch\n\n(comment) @indent.auto\n'
    assert build_queries.helix_query("highlights.scm", "(number) @number\n").endswith("(number) @constant.numeric\n")
    assert build_queries.helix_query("indents.scm", text.replace("(number) @number\n", "")).splitlines()[2:] == \
        ['["}"] @outdent']
    with pytest.raises(build_queries.UnknownCapture, match="@markup.heading"):
        build_queries.helix_query("highlights.scm", "(comment) @markup.heading\n")


@pytest.mark.skipif(shutil.which("hx") is None, reason="Helix (hx) is not installed; Debian 12 has no package")
def test_hx_health(tmp_path):
    config = tmp_path / "helix"
    (config / "runtime" / "queries").mkdir(parents=True)
    text = (HELIX / "languages.toml").read_text().replace("/path/to/rattan", str(ROOT))
    (config / "languages.toml").write_text('use-grammars = { only = ["rattan"] }\n' + text)
    shutil.copytree(HELIX / "queries" / "rattan", config / "runtime" / "queries" / "rattan")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path)}
    subprocess.run(["hx", "--grammar", "build"], env=env, check=True, capture_output=True, timeout=300)
    p = subprocess.run(["hx", "--health", "rattan"], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "rattan" in p.stdout, p.stdout + p.stderr
