"""`rattan lsp` as an editor sees it: JSON-RPC over the process's stdin and stdout."""
from __future__ import annotations

import os

import pytest

from rattan.tools.lsp.client import LspClient


@pytest.fixture
def client(tmp_path):
    c = LspClient(str(tmp_path))
    yield c
    if c.proc.poll() is None:
        c.proc.kill()
        c.proc.wait(10)


def test_an_editor_session_from_initialize_to_exit(client, tmp_path):
    init = client.request("initialize", {"processId": os.getpid(), "rootUri": None, "capabilities": {}})
    caps = init["result"]["capabilities"]
    assert init["result"]["serverInfo"]["name"] == "rattan"
    for cap in ("hoverProvider", "definitionProvider", "documentSymbolProvider", "documentFormattingProvider",
                "codeActionProvider", "referencesProvider", "documentHighlightProvider", "foldingRangeProvider",
                "documentRangeFormattingProvider", "signatureHelpProvider", "semanticTokensProvider"):
        assert caps.get(cap), cap
    assert caps["renameProvider"]  # RenameOptions with prepareProvider only for a client that offers prepareSupport
    assert "parameter" in caps["semanticTokensProvider"]["legend"]["tokenTypes"]
    assert "." in caps["completionProvider"]["triggerCharacters"]
    client.notify("initialized", {})

    uri = "file://" + str(tmp_path / "path.rtn")
    text = "channel c {\n    left -> dela { delay = 10ms } -> right\n    right -> left\n}\n"
    client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "rattan", "version": 1,
                                                            "text": text}})
    (d,) = client.diagnostics(uri)
    assert d["code"] == "RTN012" and d["range"]["start"] == {"line": 1, "character": 12}
    assert "did you mean `delay`?" in d["message"]

    actions = client.request("textDocument/codeAction", {
        "textDocument": {"uri": uri}, "range": d["range"], "context": {"diagnostics": [d]}})["result"]
    (edit,) = actions[0]["edit"]["changes"][uri]
    assert edit["newText"] == "delay"

    # the editor applies the fix as an incremental change: no diagnostics are left
    client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2},
                                             "contentChanges": [{"range": d["range"], "text": "delay"}]})
    assert client.diagnostics(uri) == []

    hover = client.request("textDocument/hover", {"textDocument": {"uri": uri},
                                                  "position": {"line": 1, "character": 22}})["result"]
    assert hover["contents"]["kind"] == "markdown" and "delay { delay: time }" in hover["contents"]["value"]

    items = client.request("textDocument/completion", {"textDocument": {"uri": uri},
                                                       "position": {"line": 1, "character": 12}})["result"]["items"]
    assert {"bw", "delay", "loss", "token_bucket"} <= {i["label"] for i in items}

    symbols = client.request("textDocument/documentSymbol", {"textDocument": {"uri": uri}})["result"]
    assert [s["name"] for s in symbols] == ["c"]

    edits = client.request("textDocument/formatting", {"textDocument": {"uri": uri},
                                                       "options": {"tabSize": 4, "insertSpaces": True}})["result"]
    assert edits == []  # already canonical

    client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    assert client.diagnostics(uri) == []

    assert client.request("shutdown", None)["result"] is None
    client.notify("exit", None)
    assert client.proc.wait(10) == 0  # and by the protocol's exit, not a kill


def test_a_request_about_a_document_never_opened_gets_no_answer_and_no_error(client, tmp_path):
    client.initialize()
    # hover on a document the server was never given: an error response, not a dead server
    reply = client.request("textDocument/hover", {"textDocument": {"uri": "file:///nowhere/x.rtn"},
                                                  "position": {"line": 0, "character": 0}})
    assert "error" not in reply and reply["result"] is None
    uri = "file://" + str(tmp_path / "ok.rtn")
    client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "rattan", "version": 1,
                                                            "text": "channel c {\n    left -> right\n}\n"}})
    diags = client.diagnostics(uri)
    assert all(d["severity"] != 1 for d in diags)
    assert client.close() == 0


def test_a_burst_of_edits_to_a_slow_file_is_checked_once_at_the_end(client, tmp_path):
    """Typing in a file that takes a while to check: the server skips versions that a newer edit
    replaced, so diagnostics follow the last keystroke instead of falling behind."""
    lines = []
    for i in range(400):
        lines += [f"channel c{i} {{", "    left -> delay { delay = 1ms } -> bw { rate = 10Mbps } -> right",
                  f"    right -> delay {{ delay = {i % 50 + 1}ms }} -> left", "}"]
    uri = "file://" + str(tmp_path / "big.rtn")
    client.initialize()
    client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "rattan", "version": 1,
                                                            "text": "\n".join(lines)}})
    assert client.diagnostics(uri, timeout=60) == []
    edits = 12
    for v in range(2, edits + 2):  # the first rate's digit typed over and over; the last makes it 0bps
        client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": v}, "contentChanges": [
            {"range": {"start": {"line": 1, "character": 49}, "end": {"line": 1, "character": 51}},
             "text": "10" if v < edits + 1 else "1x"}]})
    published = []
    while True:
        msg = client.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics", timeout=60)
        published.append(msg["params"])
        if msg["params"].get("version") == edits + 1:
            break
    assert len(published) < edits / 2, [p.get("version") for p in published]
    assert [d["code"] for d in published[-1]["diagnostics"]] != []  # the last edit's mistake is reported
    assert client.close() == 0


def test_utf8_positions_when_the_editor_offers_them(client, tmp_path):
    init = client.request("initialize", {"processId": None, "rootUri": None, "capabilities": {
        "general": {"positionEncodings": ["utf-8", "utf-16"]}}})
    assert init["result"]["capabilities"]["positionEncoding"] == "utf-8"
    client.notify("initialized", {})
    uri = "file://" + str(tmp_path / "u.rtn")
    line = '    left -> spy { path = "🎉é.pcap" } -> delay { dely = 5ms } -> right'
    client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "rattan", "version": 1,
                                                            "text": "channel c {\n" + line + "\n}\n"}})
    (d,) = [d for d in client.diagnostics(uri) if d["code"] == "RTN013"]
    assert d["range"]["start"] == {"line": 1, "character": len(line[:line.index("dely")].encode())}
    assert client.close() == 0


def test_saving_an_imported_file_checks_the_files_that_import_it_again(client, tmp_path):
    lib = tmp_path / "lib.rtn"
    lib.write_text("cell type slow(r: rate) {\n    in -> bw { rte = r } -> out\n}\n")
    main = tmp_path / "main.rtn"
    text = 'import "lib.rtn"\nchannel c {\n    left -> slow { r = 1Mbps } -> right\n    right -> left\n}\n'
    main.write_text(text)
    client.initialize()
    uri = "file://" + str(main)
    client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "rattan", "version": 1,
                                                            "text": text}})
    (d,) = client.diagnostics(uri)
    assert d["range"]["start"]["line"] == 0 and "rte" in d["message"]
    lib.write_text("cell type slow(r: rate) {\n    in -> bw { rate = r } -> out\n}\n")
    lib_uri = "file://" + str(lib)
    client.notify("textDocument/didOpen", {"textDocument": {"uri": lib_uri, "languageId": "rattan", "version": 1,
                                                            "text": lib.read_text()}})
    client.notify("textDocument/didSave", {"textDocument": {"uri": lib_uri}})
    assert client.diagnostics(uri) == []  # main.rtn, checked again without being edited
    assert client.close() == 0


@pytest.mark.parametrize("sync", [False, True])
def test_hover_right_after_an_edit_does_not_wait_for_the_new_analysis(tmp_path, sync):
    """By default the hover is answered from the last analysis while the edit's compiles (a
    1,000-cell file: a few hundred ms); RATTAN_LSP_SYNC=1, the former way, compiles first."""
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
    from compile_scale import generate
    c = LspClient(str(tmp_path), env={"RATTAN_LSP_SYNC": "1" if sync else "0"})
    try:
        c.initialize()
        uri = "file://" + str(tmp_path / "big.rtn")
        text = generate(1000)
        assert text.startswith("let base = 10ms\n")
        c.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "rattan", "version": 1,
                                                           "text": text}})
        assert c.diagnostics(uri, timeout=120) == []
        c.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2}, "contentChanges": [
            {"range": {"start": {"line": 0, "character": 11}, "end": {"line": 0, "character": 13}}, "text": "12"}]})
        hover = c.request("textDocument/hover", {"textDocument": {"uri": uri},
                                                 "position": {"line": 0, "character": 5}}, 120)["result"]
        assert hover["range"]["start"] == {"line": 0, "character": 4}
        assert ("let base = 12ms" if sync else "let base = 10ms") in hover["contents"]["value"]
        assert c.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics"
                      and m["params"].get("version") == 2, 120)["params"]["diagnostics"] == []
        hover = c.request("textDocument/hover", {"textDocument": {"uri": uri},
                                                 "position": {"line": 0, "character": 5}}, 120)["result"]
        assert "let base = 12ms" in hover["contents"]["value"]
    finally:
        assert c.close() == 0
