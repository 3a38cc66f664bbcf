"""`rattan lsp`: the language server on stdio (pygls), wiring editor requests to `analysis`.

Each open document is compiled when it opens and after every change; the compiler's findings
are published as diagnostics. Requests (hover, definition, completion, symbols, formatting,
quick fixes) are answered from the latest compilation of that document. Positions are in the
encoding negotiated at `initialize` (UTF-16 unless the editor offers UTF-8 or UTF-32).
"""
from __future__ import annotations

import asyncio
import time

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

from ... import __version__
from ...registry import Registry, default_registry
from . import analysis
from .positions import UTF16


class RattanServer(LanguageServer):
    def __init__(self, registry: Registry | None = None) -> None:
        super().__init__("rattan", __version__, text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental)
        self.registry = registry or default_registry()
        self.analyses: dict[str, analysis.Analysis] = {}
        self.compile_s: dict[str, float] = {}  # how long the document's last compile took

    @property
    def encoding(self) -> str:
        return str(getattr(self.workspace, "position_encoding", None) or UTF16)

    def is_open(self, uri: str) -> bool:
        return uri in self.workspace.text_documents

    def analysis(self, uri: str) -> analysis.Analysis | None:
        """The open document's analysis, brought up to date with its text (None if not open)."""
        if not self.is_open(uri):
            return None
        doc = self.workspace.get_text_document(uri)
        an = self.analyses.get(uri)
        if an is None or an.source.text != doc.source:
            started = time.perf_counter()
            an = self.analyses[uri] = analysis.analyze(uri, doc.source, self.registry, self.encoding)
            self.compile_s[uri] = time.perf_counter() - started
        return an

    def publish(self, uri: str) -> None:
        an = self.analysis(uri)
        if an is not None:
            self.text_document_publish_diagnostics(
                lsp.PublishDiagnosticsParams(uri=uri, diagnostics=analysis.diagnostics(an),
                                             version=self.workspace.get_text_document(uri).version))

    async def settle(self, uri: str, version: int | None) -> bool:
        """Wait a little after a change to a slow document; False if a newer change came meanwhile
        (typing in a file that takes a second to check compiles once, not once per key)."""
        pause = min(0.25, self.compile_s.get(uri, 0.0) / 4)
        await asyncio.sleep(pause if pause > 0.005 else 0)
        return self.is_open(uri) and (version is None or self.workspace.get_text_document(uri).version == version)


def build_server(registry: Registry | None = None) -> RattanServer:
    server = RattanServer(registry)

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: RattanServer, params: lsp.DidOpenTextDocumentParams) -> None:
        ls.publish(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(ls: RattanServer, params: lsp.DidChangeTextDocumentParams) -> None:
        if await ls.settle(params.text_document.uri, params.text_document.version):
            ls.publish(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: RattanServer, params: lsp.DidSaveTextDocumentParams) -> None:
        # The saved file may be imported by other open documents (or name a trace they read):
        # check again this one and every open document that imports it.
        saved = analysis.uri_to_path(params.text_document.uri)
        for uri, an in list(ls.analyses.items()):
            if uri == params.text_document.uri or (saved and saved in analysis.imported_paths(an)):
                ls.analyses.pop(uri, None)
                ls.publish(uri)
        if params.text_document.uri not in ls.analyses:
            ls.publish(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: RattanServer, params: lsp.DidCloseTextDocumentParams) -> None:
        ls.analyses.pop(params.text_document.uri, None)
        ls.compile_s.pop(params.text_document.uri, None)
        ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=params.text_document.uri,
                                                                          diagnostics=[]))

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def hover(ls: RattanServer, params: lsp.HoverParams) -> lsp.Hover | None:
        an = ls.analysis(params.text_document.uri)
        return analysis.hover(an, params.position) if an else None

    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    def definition(ls: RattanServer, params: lsp.DefinitionParams) -> lsp.Location | None:
        an = ls.analysis(params.text_document.uri)
        return analysis.definition(an, params.position) if an else None

    @server.feature(lsp.TEXT_DOCUMENT_COMPLETION,
                    lsp.CompletionOptions(trigger_characters=[".", "=", ">", "{", "[", ":", ",", " "]))
    def completion(ls: RattanServer, params: lsp.CompletionParams) -> lsp.CompletionList:
        an = ls.analysis(params.text_document.uri)
        return lsp.CompletionList(is_incomplete=False, items=analysis.completion(an, params.position) if an else [])

    @server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def document_symbol(ls: RattanServer, params: lsp.DocumentSymbolParams) -> list[lsp.DocumentSymbol]:
        an = ls.analysis(params.text_document.uri)
        return analysis.symbols(an) if an else []

    @server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
    def formatting(ls: RattanServer, params: lsp.DocumentFormattingParams) -> list[lsp.TextEdit] | None:
        an = ls.analysis(params.text_document.uri)
        return analysis.formatting(an) if an else None

    @server.feature(lsp.TEXT_DOCUMENT_CODE_ACTION,
                    lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix]))
    def code_action(ls: RattanServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        an = ls.analysis(params.text_document.uri)
        return analysis.code_actions(an, params.range) if an else []

    return server


def main() -> int:
    """Serve on stdin/stdout until the editor says exit."""
    build_server().start_io()
    return 0
