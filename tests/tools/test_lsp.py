"""The language server's answers, from `rattan.tools.lsp.analysis` (no protocol in between)."""
from __future__ import annotations

import os
import shutil

import pytest
from lsprotocol import types as lsp

from rattan.registry import Registry, default_registry
from rattan.tools.lsp import analysis as A
from rattan.tools.lsp.positions import offset, position

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples")


def analyze(text: str, uri: str = "file:///tmp/doc.rtn", registry: Registry | None = None):
    return A.analyze(uri, text, registry or default_registry())


def at(text: str, marker: str = "|"):
    """The text without `marker`, and the analysis and position where the marker was."""
    i = text.index(marker)
    an = analyze(text.replace(marker, "", 1))
    return an, position(an.source, i)


def labels(items) -> list[str]:
    return [i.label for i in items]


def open_example(tmp_path, name: str):
    """An example copied with its imports, analysed from its own path."""
    shutil.copytree(EXAMPLES, tmp_path / "ex")
    path = str(tmp_path / "ex" / name)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return A.analyze(A.path_to_uri(path), text, default_registry()), text.split("\n")


def pos_of(lines: list[str], line: int, word: str) -> lsp.Position:
    return lsp.Position(line=line, character=lines[line].index(word) + 1)


# ---------------------------------------------------------------- positions
def test_positions_in_utf8_when_the_editor_asked_for_it():
    """Neovim and Helix offer UTF-8 first, and pygls agrees to it: columns are then bytes."""
    text = 'channel c {\n    left -> spy { path = "🎉é.pcap" } -> delay { dely = 5ms } -> right\n}\n'
    an = A.analyze("file:///tmp/u.rtn", text, default_registry(), enc="utf-8")
    line = text.split("\n")[1]
    (d,) = [d for d in A.diagnostics(an) if d.code == "RTN013"]
    assert d.range.start.character == len(line[:line.index("dely")].encode())
    h = A.hover(an, lsp.Position(line=1, character=len(line[:line.index("dely") + 1].encode())))
    assert h is None  # `dely` is no parameter: no hover, but also no shift onto a neighbour
    h = A.hover(an, lsp.Position(line=1, character=len(line[:line.index("delay {") + 1].encode())))
    assert h.contents.value.startswith("```text\ndelay — ")


def test_positions_count_utf16_code_units_like_editors():
    an = analyze('# 🙂 µ\nchannel c {\n    left -> delay { delay = 1ms, jitter = 🙂 } -> right\n}\n')
    line = an.source.text.split("\n")[2]
    bad = [d for d in A.diagnostics(an) if d.code == "RTN005"]
    assert len(bad) == 1
    start = line.index("🙂")
    # the emoji is one Python character but two UTF-16 code units
    assert (bad[0].range.start.line, bad[0].range.start.character, bad[0].range.end.character) == (2, start, start + 2)
    # and round trips: a position after it maps back to the same offset
    after = lsp.Position(line=2, character=start + 2)
    assert an.source.text[offset(an.source, after)] == " "
    assert position(an.source, offset(an.source, after)) == after


# ---------------------------------------------------------------- diagnostics and quick fixes
def test_every_finding_is_a_diagnostic_with_code_help_and_a_quick_fix():
    text = "channel c {\n    left -> dela { delay = 10ms } -> right\n    right -> bw { rate = 5Mbps, rat = 3 } -> left\n}\n"
    an = analyze(text)
    ds = {d.code: d for d in A.diagnostics(an)}
    assert set(ds) == {"RTN012", "RTN013"}
    d = ds["RTN012"]
    assert d.severity == lsp.DiagnosticSeverity.Error and d.source == "rattan"
    assert (d.range.start.line, d.range.start.character, d.range.end.character) == (1, 12, 16)
    assert "unknown cell type `dela`" in d.message and "help: did you mean `delay`?" in d.message
    actions = A.code_actions(an, d.range)
    assert [a.title for a in actions] == ["Replace `dela` with `delay`"]
    edit = actions[0].edit.changes[an.uri][0]
    fixed = A.analyze(an.uri, _apply(text, an, edit), default_registry())
    assert [d.code for d in A.diagnostics(fixed)] == ["RTN013"]  # only the other mistake is left


def _apply(text: str, an, edit: lsp.TextEdit) -> str:
    return text[:offset(an.source, edit.range.start)] + edit.new_text + text[offset(an.source, edit.range.end):]


def test_a_mistake_in_an_imported_file_shows_at_the_import(tmp_path):
    (tmp_path / "lib.rtn").write_text("let speed = 10Mbps\nlet broken = 5 +\n")
    main = tmp_path / "main.rtn"
    text = 'import "lib.rtn"\nchannel c {\n    left -> right\n    right -> left\n}\n'
    an = A.analyze(A.path_to_uri(str(main)), text, default_registry())
    ds = A.diagnostics(an)
    assert ds, "the imported file's syntax error is reported"
    for d in ds:
        assert d.range.start.line == 0 and d.message.startswith("in ")
        assert d.message.startswith("in lib.rtn:2:")
        assert d.related_information[0].location.uri == A.path_to_uri(str(tmp_path / "lib.rtn"))


def test_the_examples_have_no_diagnostics(tmp_path):
    for name in ("broadband.rtn", "compound.rtn", "flaky.rtn", "multipath.rtn", "policer.rtn"):
        an, _ = open_example(tmp_path / name.replace(".", "_"), name)
        assert A.diagnostics(an) == [], name


# ---------------------------------------------------------------- hover
def test_hover_documents_cells_parameters_records_names_and_quantities(tmp_path):
    an, lines = open_example(tmp_path, "broadband.rtn")
    text = A.hover(an, pos_of(lines, 7, "bw")).contents.value
    assert text.startswith("```text\nbw — ") and "rate: rate (required, runtime)" in text
    text = A.hover(an, pos_of(lines, 7, "rate")).contents.value
    assert "bw { rate: rate }" in text and "required, changeable while running" in text
    text = A.hover(an, pos_of(lines, 7, "packets")).contents.value
    assert "droptail { packets: integer | unlimited }" in text and "Limit in packets waiting" in text
    assert A.hover(an, pos_of(lines, 7, "droptail")).contents.value.startswith("**droptail**")
    assert A.hover(an, pos_of(lines, 7, "20Mbps")).contents.value == "`20Mbps` = 20,000,000 bit/s"
    h = A.hover(an, pos_of(lines, 13, "rtt"))
    assert h.contents.value == "```rtn\nlet rtt = 40ms\n```"  # defined in this file: no "from"
    assert (h.range.start.line, h.range.end.character - h.range.start.character) == (13, 3)
    assert "cell up: bw { rate = 20Mbps" in A.hover(an, pos_of(lines, 13, "up")).contents.value
    assert A.hover(an, lsp.Position(line=0, character=3)) is None  # a comment


def test_hover_on_a_compound_type_and_its_parameters_from_an_import(tmp_path):
    an, lines = open_example(tmp_path, "compound.rtn")
    text = A.hover(an, pos_of(lines, 6, "link")).contents.value
    assert "cell type link(\n    rate: rate,\n    delay: time = 0ms," in text and "cell type from `lib/links.rtn`" in text
    assert "link { delay: time }" in A.hover(an, pos_of(lines, 6, "delay")).contents.value
    assert "let fiber_km = 5us" in A.hover(an, pos_of(lines, 3, "fiber_km")).contents.value


def test_hover_on_a_timeline_target_shows_the_parameter(tmp_path):
    an, lines = open_example(tmp_path, "flaky.rtn")
    line = next(i for i, l in enumerate(lines) if l.strip().startswith("at 10s"))
    text = A.hover(an, pos_of(lines, line, "up.rate")).contents.value
    assert "up: bw { rate: rate }" in text and "changeable while running" in text


# ---------------------------------------------------------------- definition
def test_go_to_definition_of_names_cells_types_and_imports(tmp_path):
    an, lines = open_example(tmp_path, "compound.rtn")
    lib = A.path_to_uri(str(tmp_path / "ex" / "lib" / "links.rtn"))
    loc = A.definition(an, pos_of(lines, 6, "link"))
    assert loc.uri == lib and loc.range.start.line == 3
    loc = A.definition(an, pos_of(lines, 3, "fiber_km"))
    assert loc.uri == lib and loc.range.start.line == 15
    assert A.definition(an, pos_of(lines, 1, '"lib')).uri == lib
    loc = A.definition(an, pos_of(lines, 8, "up"))
    assert loc.uri == an.uri and (loc.range.start.line, loc.range.start.character) == (6, 9)
    loc = A.definition(an, pos_of(lines, 6, "rtt"))
    assert loc.uri == an.uri and loc.range.start.line == 3


# ---------------------------------------------------------------- completion
@pytest.mark.parametrize("text, expected", [
    ("|", ["let", "import", "cell type", "channel"]),
    ("channel c {\n    |\n}\n", ["endpoints", "cell", "let", "at", "every", "left", "right"]),
    ("channel c {\n    cell up: bw { rate = 1Mbps }\n    left -> up -> right\n    at 1s { | }\n}\n", ["up"]),
    ("channel c {\n    cell up: bw { rate = 1Mbps }\n    at 1s { up.| }\n}\n", ["rate", "overhead"]),
    ("channel c {\n    left -> bw { rate = 1Mbps, | } -> right\n}\n", ["queue", "overhead"]),
    ("channel c {\n    left -> bw { queue = codel { | } } -> right\n}\n",
     ["target", "interval", "mtu", "packets", "bytes", "overhead"]),
    ("channel c {\n    left -> bw { rate = 1Mbps, queue = | } -> right\n}\n",
     ["codel", "drophead", "droptail", "infinite", "pie", "red"]),
    ("channel c {\n    left -> delay { delay = 1ms, distribution = | } -> right\n}\n",
     ["uniform", "normal", "pareto", "paretonormal"]),
])
def test_completion_offers_what_fits_the_place(text, expected):
    an, pos = at(text)
    assert labels(A.completion(an, pos)) == expected


def test_completion_after_an_arrow_offers_every_cell_type_and_the_channels_names():
    an, pos = at("channel c {\n    endpoints a, b\n    cell up: delay { delay = 1ms }\n    a -> |\n}\n")
    got = labels(A.completion(an, pos))
    assert set(default_registry().names()) <= set(got)
    assert {"up", "a", "b"} <= set(got) and "left" not in got  # declared endpoints replace the defaults
    item = next(i for i in A.completion(an, pos) if i.label == "bw")
    assert item.insert_text == "bw { $0 }" and item.insert_text_format == lsp.InsertTextFormat.Snippet


def test_completion_includes_plugin_cells_and_their_parameters():
    reg = Registry()
    reg.load_builtins()
    reg.add_cell({"title": "wobble", "description": "A plugin cell.", "type": "object",
                  "properties": {"depth": {"type": "number", "description": "How much."}}}, "plugin test")
    an = A.analyze("file:///tmp/p.rtn", "channel c {\n    left -> wobble {  } -> right\n}\n", reg)
    assert "wobble" in labels(A.completion(an, lsp.Position(line=1, character=12)))
    items = A.completion(an, lsp.Position(line=1, character=21))
    assert labels(items) == ["depth"] and items[0].documentation == "How much."


def test_completion_leaves_out_parameters_already_given():
    an, pos = at("channel c {\n    left -> delay { delay = 1ms, | } -> right\n}\n")
    got = labels(A.completion(an, pos))
    assert "delay" not in got and "jitter" in got


# ---------------------------------------------------------------- outline and formatting
def test_document_symbols_outline_the_file(tmp_path):
    an, _ = open_example(tmp_path, "flaky.rtn")
    (channel,) = [s for s in A.symbols(an) if s.kind == lsp.SymbolKind.Namespace]
    assert channel.name == "flaky"
    assert [(c.name, c.detail) for c in channel.children] == [
        ("up", "bw"), ("down", "bw"), ("at 10s", "timeline"), ("every 30s for 2s", "timeline")]


def test_formatting_is_rattan_fmt_and_refuses_broken_text():
    an = analyze("channel c {\n  left->delay{delay=1ms}->right\n}\n")
    (edit,) = A.formatting(an)
    assert edit.new_text == "channel c {\n    left -> delay { delay = 1ms } -> right\n}\n"
    assert A.formatting(analyze(edit.new_text)) == []
    assert A.formatting(analyze("channel c {\n  left -> delay {\n")) is None


def _corpus():
    root = os.path.join(os.path.dirname(__file__), "..")
    kinds = (".rtn", ".toml", ".yaml")  # an editor may ask about upstream files too
    paths = [os.path.join(EXAMPLES, n) for n in sorted(os.listdir(EXAMPLES)) if n.endswith(kinds)]
    for dirpath, _, names in sorted(os.walk(root)):
        paths += [os.path.join(dirpath, n) for n in sorted(names) if n.endswith(kinds)]
    return paths


def test_no_question_at_any_place_of_any_file_breaks_the_server():
    """Every example and every (mostly broken) golden test file, asked everything at many places:
    answers or nothing, never an exception."""
    files = _corpus()
    assert len(files) > 40
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        an = A.analyze(A.path_to_uri(os.path.abspath(path)), text, default_registry())
        A.diagnostics(an)
        A.symbols(an)
        A.formatting(an)
        A.code_actions(an, an.whole())
        step = max(1, len(text) // 1000)
        for off in range(0, len(text) + 1, step):
            pos = position(an.source, off)
            A.hover(an, pos)
            A.definition(an, pos)
            A.completion(an, pos)



def test_every_fix_the_checker_offers_removes_its_finding():
    """A quick fix replaces the diagnostic's span with `fix`: across every golden test file, applying it
    makes that finding go away (a fix that doubled the number, `20mbps` -> `2020Mbps`, fails here)."""
    golden = os.path.join(os.path.dirname(__file__), "..", "golden", "diagnostics")
    checked = 0
    for name in sorted(os.listdir(golden)):
        if not name.endswith(".rtn"):
            continue
        with open(os.path.join(golden, name), encoding="utf-8", errors="replace") as f:
            text = f.read()
        an = analyze(text)
        for d in an.comp.diagnostics:
            if d.fix is None or d.span is None or d.span.source != an.source.id:
                continue
            fixed = text[:d.span.start] + d.fix + text[d.span.end:]
            after = analyze(fixed)
            same = [e for e in after.comp.diagnostics if e.code == d.code and e.span and e.span.start == d.span.start]
            assert not same, (name, d.code, d.fix, fixed[max(0, d.span.start - 20):d.span.start + 30])
            checked += 1
    assert checked >= 5


@pytest.mark.parametrize("text", [
    "# a comment |",
    "channel c {\n    # left -> |\n}\n",
    'channel c {\n    left -> spy { path = "a -> |" } -> right\n}\n',
])
def test_no_completion_inside_comments_or_strings(text):
    an, pos = at(text)
    assert A.completion(an, pos) == []


def test_an_import_alias_completes_what_it_brings(tmp_path):
    shutil.copytree(EXAMPLES, tmp_path / "ex")
    text = 'import "lib/links.rtn" as lib\nchannel c {\n    left -> lib.| -> right\n    right -> left\n}\n'
    i = text.index("|")
    text = text.replace("|", "")
    an = A.analyze(A.path_to_uri(str(tmp_path / "ex" / "x.rtn")), text, default_registry())
    assert sorted(labels(A.completion(an, position(an.source, i)))) == ["fiber_km", "link"]


def test_timeline_targets_inside_compound_cells(tmp_path):
    shutil.copytree(EXAMPLES, tmp_path / "ex")
    base = ('import "lib/links.rtn"\nchannel c {\n    cell up: link { rate = 5Mbps }\n    left -> up -> right\n'
            '    right -> left\n    at 20s { TARGET }\n}\n')
    uri = A.path_to_uri(str(tmp_path / "ex" / "x.rtn"))

    def complete(target):
        text = base.replace("TARGET", target)
        an = A.analyze(uri, text.replace("|", ""), default_registry())
        return an, labels(A.completion(an, position(an.source, text.index("|"))))
    assert complete("up.|")[1] == ["bw", "delay", "loss"]
    assert complete("up.bw.|")[1] == ["rate", "overhead"]
    assert complete("up.delay.distribution = |")[1][:4] == ["uniform", "normal", "pareto", "paretonormal"]
    an, _ = complete("up.bw.rate = 1Mbps|")
    line = an.source.text.split("\n")[5]
    h = A.hover(an, lsp.Position(line=5, character=line.index("up.bw.rate") + 2))
    assert "up.bw: bw { rate: rate }" in h.contents.value


def test_names_inside_a_compound_type_are_its_parameters_cells_and_ports(tmp_path):
    text = ("let delay = 5ms\n"
            "cell type link(rate: rate, delay: time = 0ms) {\n"
            "    cell b: bw { rate = rate }\n"
            "    in -> b -> delay { delay = delay } -> out\n"
            "}\n"
            "channel c {\n    left -> link { rate = 1Mbps } -> right\n    right -> left\n}\n")
    an = analyze(text)
    lines = text.split("\n")
    value = lsp.Position(line=3, character=lines[3].rindex("delay") + 1)
    assert A.hover(an, value).contents.value == "```rtn\nparameter delay: time = 0ms\n```"
    assert A.definition(an, value).range.start.line == 1  # the parameter, not the file's `let`
    assert A.definition(an, lsp.Position(line=3, character=lines[3].index("b ->"))).range.start.line == 2
    assert A.hover(an, lsp.Position(line=2, character=lines[2].rindex("rate") + 1)) is not None
    an, pos = at(text.replace("bw { rate = rate }", "bw { rate = | }"))
    assert {"rate", "delay"} <= set(labels(A.completion(an, pos)))
    an, pos = at(text.replace("-> out", "-> |"))
    got = labels(A.completion(an, pos))
    assert "out" in got and "b" in got and "link" not in got  # no recursion offered


def test_a_channels_own_let_is_found_and_shadows_the_files():
    text = "let d = 1ms\nchannel c {\n    let d = 5ms\n    left -> delay { delay = d } -> right\n    right -> left\n}\n"
    an = analyze(text)
    line = text.split("\n")[3]
    pos = lsp.Position(line=3, character=line.index("= d") + 2)
    assert A.definition(an, pos).range.start.line == 2
    assert "let d = 5ms" in A.hover(an, pos).contents.value
    an, pos = at(text.replace("delay = d }", "delay = | }"))
    assert "d" in labels(A.completion(an, pos))
    (channel,) = [s for s in A.symbols(analyze(text)) if s.kind == lsp.SymbolKind.Namespace]
    assert "d" in [c.name for c in channel.children]


def test_parameters_given_before_a_nested_record_are_not_offered_again():
    an, pos = at("channel c {\n    cell up: bw {\n        queue = codel { target = 5ms }\n        |\n    }\n}\n")
    assert labels(A.completion(an, pos)) == ["rate", "overhead"]


@pytest.mark.parametrize("body, expected", [
    ("routes = [|]", ["route"]),
    ("routes = [route { prefix = a, port = 0 },\n        |]", ["route"]),
    ("routes = [route { prefix = |, port = 0 }]", ["a", "b"]),
    ("routes = [route { prefix = a, port = 0 }], default = |", ["drop"]),
])
def test_router_tables_complete_routes_endpoints_and_symbols(body, expected):
    text = "channel c {\n    endpoints a, b\n    cell r: router { BODY }\n    a -> r\n    b -> a\n}\n"
    an, pos = at(text.replace("BODY", body))
    got = labels(A.completion(an, pos))
    assert got[:len(expected)] == expected, got


def test_names_are_found_while_the_block_around_them_is_still_open():
    an, pos = at("channel c {\n    cell up: bw { rate = 1Mbps }\n    left -> |")
    assert {"up", "left", "right", "bw"} <= set(labels(A.completion(an, pos)))
    an, pos = at("channel c {\n    cell up: bw { rate = 1Mbps }\n    at 10s { up.|")
    assert labels(A.completion(an, pos)) == ["rate", "overhead"]


def test_crlf_files_keep_their_line_breaks_and_ranges_stay_on_their_lines():
    text = "channel c {\r\n  left -> delay { delay = 1ms } -> right\r\n  right -> left\r\n"  # no closing brace
    an = analyze(text)
    for d in A.diagnostics(an):
        line = text.split("\r\n")[d.range.start.line]
        assert d.range.start.character <= len(line)
    an = analyze(text + "}\r\n")
    (edit,) = A.formatting(an)
    assert "\r\n" in edit.new_text and "\n" not in edit.new_text.replace("\r\n", "")
