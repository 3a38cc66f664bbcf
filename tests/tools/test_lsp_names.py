"""References, rename, highlight, semantic tokens, folding, signature help, range formatting, the
new hovers and definitions, TOML/YAML mode, and answering from an older analysis: from
`rattan.tools.lsp` without the protocol in between (test_lsp_nvim.py drives them from an editor)."""
from __future__ import annotations

import pytest
from lsprotocol import types as lsp

from rattan.compiler import compile_path
from rattan.registry import default_registry
from rattan.tools.lsp import analysis as A
from rattan.tools.lsp import features as F
from rattan.tools.lsp import rename as R
from rattan.source import Source
from rattan.tools.lsp.positions import Moved, position

LIB = """\
let base = 10ms
cell type link(rate: rate, delay: time = 1ms) {
    cell bw: bw { rate = rate }
    in -> bw -> delay { delay = delay + base } -> out
}
"""

MAIN = """\
import "lib.rtn"
import "lib.rtn" as l
let rtt = 20ms
channel c {
    cell up: link { rate = 10Mbps, delay = rtt }
    cell down: l.link { rate = 5Mbps }
    left -> up -> right
    right -> down -> delay { delay = l.base } -> left
    at 5s { up.bw.rate = 1Mbps }
}
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "lib.rtn").write_text(LIB)
    (tmp_path / "main.rtn").write_text(MAIN)
    an = A.analyze(A.path_to_uri(str(tmp_path / "main.rtn")), MAIN, default_registry())
    assert an.comp.ok, [d.message for d in an.comp.diagnostics]
    return tmp_path, an


def pos(an: A.Analysis, text: str, needle: str, nth: int = 0, into: int = 1) -> lsp.Position:
    i = -1
    for _ in range(nth + 1):
        i = text.index(needle, i + 1)
    return position(an.source, i + into)


def spans_text(an: A.Analysis, occ) -> list[tuple[str, str]]:
    out = []
    for span, _ in occ:
        src = an.src_of(span)
        out.append((src.name.rsplit("/", 1)[-1], src.text[span.start:span.end]))
    return sorted(out)


# ---------------------------------------------------------------- the compiler's name index
def test_the_compiler_records_each_use_with_its_definition_across_imports_and_timelines(project):
    tmp, _ = project
    comp = compile_path(str(tmp / "main.rtn"))

    def where(span):
        src = comp.sources[span.source]
        return f"{src.name.rsplit('/', 1)[-1]}:{src.text[span.start:span.end]}:{src.line_col(span.start)[0]}"

    uses = {where(u.span): where(u.target) for u in comp.names.uses.values()}
    assert uses["main.rtn:up:7"] == "main.rtn:up:5"           # a chain
    assert uses["main.rtn:up:9"] == "main.rtn:up:5"           # a timeline target's cell
    assert uses["main.rtn:bw:9"] == "lib.rtn:bw:3"            # ... and the compound's inner cell
    assert uses["main.rtn:link:5"] == "lib.rtn:link:2"        # a type from a plain import
    assert uses["main.rtn:l:6"] == "main.rtn:l:2"             # an alias
    assert uses["main.rtn:link:6"] == "lib.rtn:link:2"        # ... and the type through it
    assert uses["main.rtn:base:8"] == "lib.rtn:base:1"        # a let through the alias
    assert uses["main.rtn:rate:5"] == "lib.rtn:rate:2"        # an argument names the parameter
    assert uses["lib.rtn:rate:3"] == "lib.rtn:rate:2"         # the parameter used in the body
    assert uses["main.rtn:rtt:5"] == "main.rtn:rtt:3"
    assert not any(k.startswith("main.rtn:left") for k in uses)  # default endpoints: built in


def test_references_of_a_cell_a_let_and_a_parameter(project):
    _, an = project
    t = R.target_at(an, an.offset(pos(an, MAIN, "up ->")))
    assert spans_text(an, R.occurrences(an, t.key)) == [("main.rtn", "up")] * 3
    t = R.target_at(an, an.offset(pos(an, MAIN, "rtt", 1)))
    assert [d for _, d in sorted(R.occurrences(an, t.key), key=lambda o: o[0].start)] == [True, False]
    t = R.target_at(an, an.offset(pos(an, MAIN, "rate = 10")))
    assert spans_text(an, R.occurrences(an, t.key)) == [("lib.rtn", "rate"), ("lib.rtn", "rate"),
                                                        ("main.rtn", "rate"), ("main.rtn", "rate")]


def test_highlight_marks_the_definition_as_written(project):
    _, an = project
    hs = R.highlights(an, pos(an, MAIN, "rtt"))
    assert [(h.range.start.line, h.kind) for h in hs] == [(2, lsp.DocumentHighlightKind.Write),
                                                         (4, lsp.DocumentHighlightKind.Read)]


def test_rename_of_an_inner_cell_from_a_timeline_edits_both_files(project):
    tmp, an = project
    edit = R.rename([], an, pos(an, MAIN, ".bw.", into=2), "shaper")
    lib_uri, main_uri = A.path_to_uri(str(tmp / "lib.rtn")), A.path_to_uri(str(tmp / "main.rtn"))
    assert sorted(edit.changes) == sorted([lib_uri, main_uri])
    assert [e.range.start.line for e in edit.changes[lib_uri]] == [2, 3]
    assert [(e.range.start.line, e.new_text) for e in edit.changes[main_uri]] == [(8, "shaper")]


def test_rename_of_a_compound_type_and_of_its_parameter(project):
    tmp, an = project
    edit = R.rename([], an, pos(an, MAIN, "link"), "access")
    main_uri, lib_uri = A.path_to_uri(str(tmp / "main.rtn")), A.path_to_uri(str(tmp / "lib.rtn"))
    assert len(edit.changes[main_uri]) == 2 and len(edit.changes[lib_uri]) == 1
    edit = R.rename([], an, pos(an, MAIN, "delay = rtt"), "lag")
    assert [e.range.start.line for e in edit.changes[lib_uri]] == [1, 3]  # declared, used in the body
    assert [e.range.start.line for e in edit.changes[main_uri]] == [4]    # the argument


@pytest.mark.parametrize("needle,new,why", [
    ("up ->", "down", "`down` is already a cell"),
    ("up ->", "right", "is a default endpoint"),
    ("rtt", "l", "`l` is already a module"),
    ("rtt", "cell", "keyword"),
    ("rtt", "2x", "is not a name"),
    ("link", "bw", "built-in cell type"),
])
def test_a_rename_that_would_clash_is_refused(project, needle, new, why):
    _, an = project
    with pytest.raises(R.Refused, match=why):
        R.rename([], an, pos(an, MAIN, needle), new)


@pytest.mark.parametrize("needle,why", [
    ("delay {", "`delay` is a built-in cell type"),
    ("left ->", "default endpoint"),
    ("channel", "keyword"),
])
def test_a_rename_of_something_built_in_is_refused(project, needle, why):
    _, an = project
    with pytest.raises(R.Refused, match=why):
        R.prepare(an, pos(an, MAIN, needle))


# ---------------------------------------------------------------- quick fixes
@pytest.mark.parametrize("target,fixed", [("up.rat", "up.rate"), ("upp.rate", "up.rate")])
def test_a_timeline_target_typo_has_a_quick_fix(target, fixed):
    text = f"channel c {{\n    cell up: bw {{ rate = 1Mbps }}\n    left -> up -> right\n    right -> left\n" \
           f"    at 1s {{ {target} = 2Mbps }}\n}}\n"
    an = A.analyze("file:///tmp/t.rtn", text, default_registry())
    (d,) = [d for d in A.diagnostics(an) if d.code == "RTN060"]
    (action,) = A.code_actions(an, d.range)
    (e,) = action.edit.changes["file:///tmp/t.rtn"]
    assert e.new_text == fixed


def test_a_route_prefix_typo_has_a_quick_fix_on_the_prefix_alone():
    text = ("channel c {\n    endpoints left, right, other\n"
            "    cell r: router { routes = [route { prefix = rigth, port = 0 }, route { prefix = other, port = 1 }] }\n"
            "    left -> r\n    r[0] -> right\n    r[1] -> other\n    right -> left\n    other -> left\n}\n")
    an = A.analyze("file:///tmp/t.rtn", text, default_registry())
    (d,) = [d for d in A.diagnostics(an) if d.code == "RTN040"]
    assert (d.range.start.line, d.range.start.character, d.range.end.character) == (2, 48, 53)
    (action,) = A.code_actions(an, d.range)
    (e,) = action.edit.changes["file:///tmp/t.rtn"]
    assert e.new_text == "right" and e.range == d.range


def test_a_name_typo_through_an_import_alias_has_a_quick_fix(project):
    tmp, _ = project
    text = MAIN.replace("l.base", "l.bas")
    uri = A.path_to_uri(str(tmp / "main.rtn"))
    an = A.analyze(uri, text, default_registry())
    (d,) = [d for d in A.diagnostics(an) if d.code == "RTN011"]
    (action,) = A.code_actions(an, d.range)
    assert action.edit.changes[uri][0].new_text == "l.base"


# ---------------------------------------------------------------- semantic tokens, folding, signatures
def decode(an: A.Analysis, data: list[int]) -> list[tuple[str, str, set[str]]]:
    out, line, char = [], 0, 0
    lines = an.source.text.split("\n")
    for i in range(0, len(data), 5):
        dl, dc, n, t, mods = data[i:i + 5]
        line, char = line + dl, (char + dc if dl == 0 else dc)
        out.append((lines[line][char:char + n], F.TOKEN_TYPES[t],
                    {m for k, m in enumerate(F.TOKEN_MODIFIERS) if mods >> k & 1}))
    return out


def test_semantic_tokens_say_what_each_name_resolved_to(project):
    _, an = project
    toks = decode(an, F.semantic_tokens(an))
    assert ("rtt", "variable", {"readonly", "declaration"}) in toks
    assert ("rtt", "variable", {"readonly"}) in toks
    assert ("up", "variable", {"declaration"}) in toks
    assert ("link", "class", set()) in toks
    assert ("l", "namespace", set()) in toks
    assert ("delay", "type", {"defaultLibrary"}) in toks
    assert ("rate", "parameter", set()) in toks  # the argument naming the compound's parameter
    assert ("10Mbps", "number", set()) in toks
    assert ('"lib.rtn"', "string", set()) in toks


def test_folding_ranges_cover_blocks_comments_and_imports(project):
    _, an = project
    folds = {(f.start_line, f.end_line, f.kind) for f in F.folding_ranges(an)}
    assert (0, 1, lsp.FoldingRangeKind.Imports) in folds
    assert (3, 9, None) in folds
    an = A.analyze("file:///tmp/f.rtn", "# one\n# two\n# three\nlet a = 1ms\n", default_registry())
    assert [(f.start_line, f.end_line, f.kind) for f in F.folding_ranges(an)] == \
        [(0, 2, lsp.FoldingRangeKind.Comment)]


def test_signature_help_in_a_compound_cell_s_parameter_list(project):
    _, an = project
    sig = F.signature_help(an, pos(an, MAIN, "delay = rtt", into=0))
    (s,) = sig.signatures
    assert s.label == "link { rate: rate, delay: time = 1ms }"
    assert sig.active_parameter == 1
    a, b = s.parameters[1].label
    assert s.label[a:b] == "delay: time = 1ms"
    sig = F.signature_help(an, pos(an, MAIN, "rate = 5Mbps", into=0))
    assert sig.active_parameter == 0  # `l.link`, through the alias


def test_range_formatting_changes_only_the_lines_asked_for():
    text = "let a  =  1ms\nlet b  =  2ms\nlet c  =  3ms\n"
    an = A.analyze("file:///tmp/r.rtn", text, default_registry())
    rng = lsp.Range(start=lsp.Position(line=1, character=0), end=lsp.Position(line=1, character=3))
    (e,) = F.range_formatting(an, rng)
    assert (e.range.start.line, e.range.end.line, e.new_text) == (1, 2, "let b = 2ms\n")


# ---------------------------------------------------------------- hover and definition on paths and values
def test_hover_on_an_enum_value_an_import_and_a_trace(tmp_path):
    (tmp_path / "t.down").write_text("5\n10\n20\n")
    (tmp_path / "lib.rtn").write_text(LIB)
    text = ('import "lib.rtn" as l\nchannel c {\n    cell o: outage { state = down }\n'
            '    cell t: bw_trace { trace = "t.down" }\n    left -> o -> t -> right\n    right -> left\n}\n')
    an = A.analyze(A.path_to_uri(str(tmp_path / "m.rtn")), text, default_registry())
    h = A.hover(an, pos(an, text, "down }")).contents.value
    assert "one of `up`, **`down`**" in h
    h = A.hover(an, pos(an, text, '"lib.rtn"')).contents.value
    assert "as `l`" in h and "cell type `link` (rate: rate, delay: time)" in h
    h = A.hover(an, pos(an, text, '"t.down"')).contents.value
    assert "bw trace `t.down`" in h and "3 opportunities" in h and "period 0.02 s" in h
    d = A.definition(an, pos(an, text, '"t.down"'))
    assert d.uri == A.path_to_uri(str(tmp_path / "t.down"))
    d = A.definition(an, pos(an, text, '"lib.rtn"'))
    assert d.uri == A.path_to_uri(str(tmp_path / "lib.rtn"))


# ---------------------------------------------------------------- TOML and YAML documents
def test_toml_documents_get_the_schema_s_keys_not_rtn_keywords():
    text = '[cells.up]\ntype = "Bw"\nbandwidth = "20Mbps"\n\n[cells.d]\ntype = \n'
    an = A.analyze("file:///tmp/x.toml", text, default_registry())
    keys = [i.label for i in A.completion(an, lsp.Position(line=3, character=0))]
    assert sorted(keys) == ["bw_type", "queue", "queue_config"]  # Bw's keys, less those written
    types = [i.label for i in A.completion(an, lsp.Position(line=5, character=7))]
    assert {"Bw", "Delay", "Loss", "TokenBucket", "Router", "Spy"} <= set(types)
    assert not {"let", "channel", "cell type"} & set(types + keys)
    assert A.symbols(an) == [] and A.formatting(an) is None
    assert "Link rate" in A.hover(an, lsp.Position(line=2, character=2)).contents.value


def test_a_quantity_value_is_offered_its_examples_in_toml_and_yaml():
    for uri, text, line, column, quoted in [
            ("file:///tmp/x.toml", '[cells.up]\ntype = "Bw"\nbandwidth = \n', 2, 12, True),
            ("file:///tmp/x.yaml", "cells:\n  d:\n    type: Delay\n    delay: \n", 3, 11, False)]:
        an = A.analyze(uri, text, default_registry())
        items = A.completion(an, lsp.Position(line=line, character=column))
        labels = [i.label for i in items]
        assert labels == (["20Mbps", "1Gbps", "1Gbps 200Mbps", "500kbps"] if quoted else ["20ms", "1.5s", "100us", "1h 30m"])
        assert items[0].insert_text == ('"20Mbps"' if quoted else "20ms")
    an = A.analyze("file:///tmp/x.toml", '[cells.up]\ntype = "Bw"\nbandwidth = "20Mbps"\n', default_registry())
    assert "one of" not in A.hover(an, lsp.Position(line=2, character=2)).contents.value  # not its only values
    an = A.analyze("file:///tmp/x.toml", '[cells.up]\ntype = "Bw"\n\n', default_registry())
    (key,) = [i for i in A.completion(an, lsp.Position(line=2, character=0)) if i.label == "bandwidth"]
    assert key.detail == "such as 20Mbps, 1Gbps"


def test_yaml_documents_get_the_keys_of_the_mapping_the_cursor_is_in():
    text = "env:\n  mode: Isolated\ncells:\n  up:\n    type: Delay\n    \n"
    an = A.analyze("file:///tmp/x.yaml", text, default_registry())
    keys = [i.label for i in A.completion(an, lsp.Position(line=5, character=4))]
    assert "delay" in keys and "bandwidth" not in keys and "type" not in keys
    top = [i.label for i in A.completion(an, lsp.Position(line=6, character=0))]
    assert "links" in top and "cells" not in top


# ---------------------------------------------------------------- answering from an older analysis
def test_moved_maps_offsets_around_one_edited_region():
    m = Moved(Source(0, "", "abc\nXYZ\ndef"), "abc\nQR\ndef")
    assert m.back(10) == 11 and m.forward(11) == 10    # after the edit: shifted
    assert m.back(2) == 2 and m.forward(2) == 2        # before: unchanged
    assert m.back(5) == 4                              # inside: the edit's start


def test_completion_from_an_older_analysis_reads_the_context_from_the_current_text():
    old = "channel c {\n    cell up: bw { rate = 1Mbps }\n    left -> up -> right\n}\n"
    new = old.replace("    left", "    right -> \n    left")
    an = A.analyze("file:///tmp/o.rtn", old, default_registry())
    items = A.completion(an, lsp.Position(line=2, character=13), Moved(an.source, new))
    assert "up" in [i.label for i in items] and "delay" in [i.label for i in items]


@pytest.mark.parametrize("old,new", [
    ("a\nbb\nccc\ndd\n", "a\nbXb\nccc\ndd\n"),          # within a line
    ("a\nbb\nccc\ndd\n", "a\nb\n\n\nb\nccc\ndd\n"),      # lines added
    ("a\nbb\nccc\ndd\n", "a\ndd\n"),                     # lines removed
    ("é🙂\r\nx = 1\r\ny\r\n", "é🙂\r\nx = 12\r\ny\r\n"),  # CRLF, characters beyond ASCII
])
@pytest.mark.parametrize("enc", ["utf-16", "utf-8", "utf-32"])
def test_moved_positions_in_the_current_text_match_indexing_it_whole(old, new, enc):
    m = Moved(Source(0, "", old), new)
    whole = Source(0, "", new)
    for off in range(len(new) + 1):
        if off and new[off - 1] == "\r" and off < len(new) and new[off] == "\n":
            continue  # inside a line break: no position of its own
        p = position(whole, off, enc)
        assert m.new_position(off, enc) == p, off
        if not (0xD800 <= ord(new[off - 1]) <= 0xDFFF if off else False):
            assert m.new_offset(p, enc) == off, (off, p)


def test_rename_of_a_declared_endpoint_and_its_clash():
    text = "channel c {\n    endpoints a, b\n    a -> delay { delay = 1ms } -> b\n    b -> a\n}\n"
    an = A.analyze("file:///tmp/e.rtn", text, default_registry())
    edit = R.rename([], an, pos(an, text, "a ->", into=0), "client")
    assert [(e.range.start.line, e.range.start.character) for e in edit.changes["file:///tmp/e.rtn"]] == \
        [(1, 14), (2, 4), (3, 9)]
    with pytest.raises(R.Refused, match="`b` is already an endpoint"):
        R.rename([], an, pos(an, text, "a ->", into=0), "b")
