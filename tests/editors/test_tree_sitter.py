"""The tree-sitter grammar (editors/tree-sitter-rattan) parses what the compiler parses.

- Its corpus (test/corpus/*.txt, the format of `tree-sitter test`) gives the expected trees.
- Every .rtn file of the repository and of ../shared/examples, every `rtn` block of the docs,
  and the snippets below parse without an ERROR or MISSING node exactly when the compiler's
  own parser (rattan/syntax) reports no syntax error in them: the grammar cannot drift from the
  language without a test failing.
- The highlight, fold, indent and locals queries (for Neovim and for Helix) compile against the
  grammar and colour every keyword.
- src/ is what `tree-sitter generate` makes of grammar.js, where the generator is installed.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from rattan.diagnostics.diagnostic import Sink
from rattan.source import Source
from rattan.syntax.parser import parse
from tests.conftest import ROOT, SHARED_EXAMPLES
from tests.editors.conftest import GRAMMAR

# The compiler's codes for a text that does not parse: RTN001 (syntax), RTN002 (unterminated
# string), RTN003 (a space before a unit), RTN005 (invalid character). RTN007 (brackets nested
# too deep) is a limit of the compiler, not of the syntax: the tree-sitter grammar accepts it.
SYNTAX_CODES = {"RTN001", "RTN002", "RTN003", "RTN005"}

# Texts where the two may differ, and why.
KNOWN = {
    # Bytes that are not UTF-8 inside a comment: the compiler refuses the file, tree-sitter
    # reads them as U+FFFD (an editor shows the file anyway).
    "tests/golden/diagnostics/RTN005_not_utf8.rtn",
}


def compiler_syntax_error(text: bytes) -> bool:
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        return True
    sink = Sink()
    parse(Source(0, "t.rtn", decoded), sink)
    return any(d.code in SYNTAX_CODES for d in sink.items)


def rtn_files() -> list[tuple[str, bytes]]:
    found = {}
    for base, label in ((ROOT, ""), (SHARED_EXAMPLES, "shared/examples/")):
        if not base.is_dir():
            continue
        for p in sorted(base.rglob("*.rtn")):
            rel = p.relative_to(base)
            if rel.parts[0] in (".venv", ".git") or "node_modules" in rel.parts:
                continue
            found[label + str(rel)] = p.read_bytes()
    return sorted(found.items())


def doc_blocks() -> list[tuple[str, bytes]]:
    blocks = []
    docs = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"] + sorted(
        (ROOT / "stdlib_cells").rglob("*.md"))
    for md in docs:
        text = md.read_text(encoding="utf-8")
        for i, m in enumerate(re.finditer(r"^```rtn([^\n]*)\n(.*?)^```", text, re.S | re.M)):
            line = text.count("\n", 0, m.start()) + 1
            blocks.append((f"{md.relative_to(ROOT)}:{line}{m.group(1)}", m.group(2).encode()))
    return blocks


# Corner cases of the syntax, each checked against the compiler like the files.
SNIPPETS = [
    "let at = 5ms",                                   # a keyword is not a name
    "let type = 1",
    "let letter = 1",                                 # a name that starts with a keyword is
    "let a = truex",
    "let a = 1 let b = 2",                            # one statement a line
    "let a = 1\n\n",
    "let a =\n 2",                                    # a statement does not go on after `=`
    "let a = 1 +\n 2",
    "let a = (1 +\n 2)",                              # nor inside parentheses
    "let a = 1 \\\n + 2",                             # ... unless joined with `\`
    "let a = [\n 1,\n 2,\n]",                         # but does inside [ ] and { }
    "let a = [,]",
    "let a = [1 2]",
    "let a = x { a = 1 b = 2 }",
    "let a = x { a = 1\n b = 2 }",
    "let a = 10 ms",                                  # RTN003: a space before the unit
    "let a = 5 µs",
    "let a = µs",
    'let a = "x',                                     # an unterminated string
    "let a = 1 $",                                    # an invalid character
    "let a = 10ms/s", "let a = 10Mbit/s", "let a = 64KB/s", "let a = 2e3", "let a = 1.5.3",
    "let a = 1.", "let a = .5", "let a = - -1", "let a = b[0]",
    'import "x" as y', "import x",
    "->", "let a = 1\n-> b",
    "channel c {}", "channel c {\n\n}", "channel c { left -> right }",
    "channel c {\nleft ->\n right\n}",                # `->` at the end of a line does not continue
    "channel c {\n left -> right # x\n # y\n\n -> z\n}",
    "channel c {\n left -> right \\\n -> x\n}",
    "channel c {\r\n a -> b\r\n   -> c\r\n}\r\n",
    "let a = 1\r\nlet b = 2\r\n",
    "channel c {\n a[0] {x=1} -> b\n}", "channel c {\n a -> b[x]\n}",
    "channel c {\n cell x: a.b\n}", "channel c {\n cell x: a.b { }\n}",
    "endpoints a,\n b",
    "channel c {\n at 1s { }\n}", "channel c {\n at 1s { a.b = 1, c = 2, }\n}",
    "channel c {\n at 1s { a.b = 1 c = 2 }\n}",
    "channel c {\n at t { up.rate = 1Mbps }\n}",      # `t {` is a record, as in the compiler
    "channel c {\n every 1s for 2s { up.rate = 1Mbps }\n}",
    "cell type t() {}", "cell type t(\n) {\n}",
    "cell type x(a: b = 1, c: d) {\n in -> out\n}", "cell type x(a: b c: d) {}",
]


def test_the_cross_check_covers_the_language():
    files, blocks = rtn_files(), doc_blocks()
    assert len(files) >= 60, len(files)           # examples, golden diagnostics, test inputs
    assert len(blocks) >= 40, len(blocks)
    assert sum(compiler_syntax_error(t) for _, t in files + blocks) >= 5


@pytest.mark.parametrize("name,text", rtn_files() + doc_blocks(), ids=lambda v: v if isinstance(v, str) else "")
def test_parses_as_the_compiler_does(ts_parser, name, text):
    if name in KNOWN:
        pytest.skip("a known difference, see KNOWN")
    tree = ts_parser.parse(text)
    want = compiler_syntax_error(text)
    assert tree.root_node.has_error == want, (
        f"{name}: the compiler {'reports' if want else 'reports no'} syntax error, tree-sitter "
        f"gives {tree.root_node}")


@pytest.mark.parametrize("text", SNIPPETS)
def test_snippet_parses_as_the_compiler_does(ts_parser, text):
    tree = ts_parser.parse(text.encode())
    assert tree.root_node.has_error == compiler_syntax_error(text.encode()), str(tree.root_node)


# -- the corpus, in the format of `tree-sitter test`

def corpus_cases() -> list[tuple[str, str, str]]:
    cases = []
    for f in sorted((GRAMMAR / "test" / "corpus").glob("*.txt")):
        text = f.read_text(encoding="utf-8")
        parts = re.split(r"^={3,}\r?\n(.*?)\r?\n={3,}\r?\n", text, flags=re.M)
        for title, body in zip(parts[1::2], parts[2::2]):
            source, expected = re.split(r"^-{3,}\r?$", body, maxsplit=1, flags=re.M)
            cases.append((f"{f.stem}: {title}", source.removeprefix("\n").removesuffix("\n"),
                          expected))
    return cases


def _sexp(text: str) -> str:
    return re.sub(r"\s*\)", ")", re.sub(r"\(\s*", "(", re.sub(r"\s+", " ", text))).strip()


def test_corpus_has_cases():
    assert len(corpus_cases()) >= 15


@pytest.mark.parametrize("title,source,expected", corpus_cases(), ids=lambda v: v if v.count("\n") == 0 and len(v) < 80 else "")
def test_corpus(ts_parser, title, source, expected):
    tree = ts_parser.parse(source.encode())
    assert _sexp(str(tree.root_node)) == _sexp(expected)


# -- queries

QUERIES = sorted((GRAMMAR / "queries").glob("*.scm")) + sorted(
    (ROOT / "editors" / "helix" / "queries" / "rattan").glob("*.scm"))
KEYWORDS = ["let", "import", "as", "cell", "type", "channel", "endpoints", "at", "every", "for"]


@pytest.mark.parametrize("path", QUERIES, ids=lambda p: str(p.relative_to(ROOT)))
def test_query_compiles(ts_language, path):
    import tree_sitter
    tree_sitter.Query(ts_language, path.read_text(encoding="utf-8"))


def test_neovim_queries_are_the_grammar_s():
    """editors/nvim reads the grammar's own queries (a link, not a copy that could drift)."""
    linked = ROOT / "editors" / "nvim" / "queries" / "rattan"
    assert linked.resolve() == (GRAMMAR / "queries").resolve()


@pytest.mark.parametrize("path,keyword_capture", [
    (GRAMMAR / "queries" / "highlights.scm", "keyword"),
    (ROOT / "editors" / "helix" / "queries" / "rattan" / "highlights.scm", "keyword"),
], ids=["neovim", "helix"])
def test_highlights_colour_every_keyword_and_token(ts_language, ts_parser, path, keyword_capture):
    import tree_sitter
    query = tree_sitter.Query(ts_language, path.read_text(encoding="utf-8"))
    source = "\n".join([
        'import "lib/links.rtn" as lib',
        "let rtt = 40ms  # one way",
        "cell type t(rate: rate = 1Mbps) {",
        "    in -> bw { rate = rate } -> out",
        "}",
        "channel c {",
        "    endpoints left, right",
        "    cell up: lib.link { rate = 2 * 10Mbps, on = true }",
        "    left -> up -> right",
        "    right -> left",
        '    at 1s { up.rate = 1Mbps }',
        "    every 1s for 2s { up.rate = 0bps }",
        "}",
    ]).encode()
    tree = ts_parser.parse(source)
    assert not tree.root_node.has_error
    captured: dict[tuple[int, int], list[str]] = {}
    for name, nodes in tree_sitter.QueryCursor(query).captures(tree.root_node).items():
        for n in nodes:
            captured.setdefault((n.start_byte, n.end_byte), []).append(name)

    def names_at(text: str) -> list[str]:
        start = source.index(text.encode())
        return captured.get((start, start + len(text.encode())), [])

    for kw in KEYWORDS:
        for m in re.finditer(rb"\b%s\b" % kw.encode(), source):
            got = captured.get((m.start(), m.end()), [])
            assert any(c.startswith(keyword_capture) for c in got), (kw, got)
    assert any(c.startswith("comment") for c in names_at("# one way"))
    assert any(c.startswith(("number", "constant.numeric")) for c in names_at("40ms"))
    assert any(c.startswith("string") for c in names_at('"lib/links.rtn"'))
    assert any(c.startswith(("boolean", "constant.builtin.boolean")) for c in names_at("true"))
    assert any(c.startswith("type") for c in names_at("bw"))


# -- src/ is generated from grammar.js

def _generator() -> str | None:
    exe = os.environ.get("TREE_SITTER") or shutil.which("tree-sitter")
    if exe is None:
        built = GRAMMAR / "tools" / "generator" / "target" / "release" / "tree-sitter"
        exe = str(built) if built.exists() else None
    return exe


def test_src_is_generated_from_grammar_js(tmp_path):
    exe = _generator()
    if exe is None:
        pytest.skip("no `tree-sitter` generator: editors/tree-sitter-rattan/tools/build-generator.sh "
                    "builds one (.ci/run does)")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    if not re.search(r"\b0\.20\.", version):
        pytest.skip(f"src/ was generated by tree-sitter 0.20.7; {exe} is {version.strip()!r}, "
                    "whose output differs in form")
    work = tmp_path / "g"
    work.mkdir()
    shutil.copy(GRAMMAR / "grammar.js", work)
    subprocess.run([exe, "generate"], cwd=work, check=True, capture_output=True)
    for name in ("parser.c", "grammar.json", "node-types.json"):
        assert (work / "src" / name).read_bytes() == (GRAMMAR / "src" / name).read_bytes(), (
            f"src/{name} is out of date: run `tree-sitter generate` in editors/tree-sitter-rattan")
