"""`rattan lsp`: the language server on stdio (pygls), wiring editor requests to `analysis`.

Each open document is compiled when it opens and after every change, in a worker thread and
debounced (typing in a file that takes a second to check compiles once, not once per key);
the compiler's findings are published as diagnostics when a compilation of the latest text
ends. Hover, completion, definition, highlight and signature help do not wait for it: they are
answered from the last finished analysis, positions moved across the edit since. Requests
whose answer edits the text or lists every occurrence (rename, references, formatting, quick
fixes, semantic tokens, folding, the outline) wait for the analysis of the current text.
RATTAN_LSP_SYNC=1 restores the former behaviour, where every request first compiled the
document's current text (kept for benchmarks/lsp_latency.py to compare against).
Positions are in the encoding negotiated at `initialize` (UTF-16 unless the editor offers
UTF-8 or UTF-32).
"""
from __future__ import annotations

import asyncio
import gc
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer
from pygls.workspace.text_document import TextDocument

from ... import __version__
from ...registry import Registry, default_registry
from . import analysis, features, rename
from .positions import UTF16, Moved

REQUEST_FAILED = -32803  # LSP's RequestFailed: the request was valid, the server refuses it


def _apply_incremental_change(self: TextDocument, change: lsp.TextDocumentContentChangePartial) -> None:
    """pygls's own, with the text spliced at the change's offsets instead of rebuilt line by line
    in Python (a keystroke in a 100,000-line file cost tens of ms before any request ran)."""
    lines = self.lines
    rng = self._position_codec.range_from_client_units(lines, change.range)
    if rng.start.line >= len(lines):
        self._source = self.source + change.text
        return
    start = sum(map(len, lines[:rng.start.line]))
    end = start + sum(map(len, lines[rng.start.line:rng.end.line]))
    start += min(rng.start.character, len(lines[rng.start.line]))
    end = end + min(rng.end.character, len(lines[rng.end.line])) if rng.end.line < len(lines) else len(self.source)
    source = self.source
    self._source = source[:start] + change.text + source[max(start, end):]


TextDocument._apply_incremental_change = _apply_incremental_change


class RattanServer(LanguageServer):
    def __init__(self, registry: Registry | None = None, sync: bool | None = None) -> None:
        super().__init__("rattan", __version__, text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental)
        self.registry = registry or default_registry()
        self.sync = os.environ.get("RATTAN_LSP_SYNC") == "1" if sync is None else sync
        self.analyses: dict[str, analysis.Analysis] = {}  # the last finished analysis of each document
        self.compile_s: dict[str, float] = {}  # how long the document's last compile took
        self.running: dict[str, asyncio.Task] = {}
        self.finished: dict[str, asyncio.Event] = {}  # set when an analysis of a document ends
        self.failed: dict[str, str] = {}  # a text whose analysis raised (the error went to the log)
        self.worker = ThreadPoolExecutor(1, thread_name_prefix="rattan-lsp-analysis")

    @property
    def encoding(self) -> str:
        return str(getattr(self.workspace, "position_encoding", None) or UTF16)

    def is_open(self, uri: str) -> bool:
        return uri in self.workspace.text_documents

    def text(self, uri: str) -> str:
        return self.workspace.get_text_document(uri).source

    # ------------------------------------------------------------ the former, synchronous way
    def analysis(self, uri: str) -> analysis.Analysis | None:
        """The open document's analysis, compiled now if its text changed (None if not open)."""
        if not self.is_open(uri):
            return None
        doc = self.workspace.get_text_document(uri)
        an = self.analyses.get(uri)
        if an is None or an.source.text != doc.source:
            started = time.perf_counter()
            an = self.analyses[uri] = analysis.analyze(uri, doc.source, self.registry, self.encoding)
            self.compile_s[uri] = time.perf_counter() - started
        return an

    def publish(self, uri: str, an: analysis.Analysis | None = None) -> None:
        an = an or self.analysis(uri)
        if an is not None:
            self.text_document_publish_diagnostics(
                lsp.PublishDiagnosticsParams(uri=uri, diagnostics=analysis.diagnostics(an),
                                             version=self.workspace.get_text_document(uri).version))

    def pause(self, uri: str) -> float:
        """How long to wait after a change before compiling: a quarter of the last compile, at most 250 ms."""
        pause = min(0.25, self.compile_s.get(uri, 0.0) / 4)
        return pause if pause > 0.005 else 0.0

    async def settle(self, uri: str, version: int | None) -> bool:
        """Wait a little after a change to a slow document; False if a newer change came meanwhile."""
        await asyncio.sleep(self.pause(uri))
        return self.is_open(uri) and (version is None or self.workspace.get_text_document(uri).version == version)

    # ------------------------------------------------------------ analysis in the worker thread
    def changed(self, uri: str) -> None:
        """The document's text changed (or must be checked again): compile it soon."""
        if self.sync:
            return
        task = self.running.get(uri)
        if task is None or task.done():
            self.running[uri] = asyncio.get_running_loop().create_task(self._analyze_until_current(uri))

    async def _analyze_until_current(self, uri: str) -> None:
        loop = asyncio.get_running_loop()
        first = True
        while self.is_open(uri):
            await asyncio.sleep(0 if first and uri not in self.analyses else self.pause(uri))
            first = False
            if not self.is_open(uri):
                break
            doc = self.workspace.get_text_document(uri)
            text, version = doc.source, doc.version
            old = self.analyses.get(uri)
            if old is None or old.source.text != text:
                started = time.perf_counter()
                try:
                    an = await loop.run_in_executor(self.worker, analysis.analyze, uri, text, self.registry,
                                                    self.encoding)
                except Exception as e:  # a bug in the compiler: say so, and keep answering from the last
                    self.failed[uri] = text
                    self.window_log_message(lsp.LogMessageParams(type=lsp.MessageType.Error,
                                                                 message=f"rattan: analysing {uri} failed: {e!r}"))
                    self._wake(uri)
                    break
                self.compile_s[uri] = time.perf_counter() - started
                if not self.is_open(uri):
                    break
                released = self.keep(uri, an)
                self._wake(uri)
                await asyncio.wrap_future(released)  # before publishing: see keep()
            else:
                an = old
            if self.workspace.get_text_document(uri).version == version:
                self.publish(uri, an)
                break
        self.running.pop(uri, None)

    def keep(self, uri: str, an: analysis.Analysis):
        """Make `an` the document's last analysis; the future of freeing the one it replaces.

        A 10,000-cell analysis is most of a million objects: freeing one takes about 0.1 s, and
        a full pass of the cyclic garbage collector over two of them a second, both holding
        the interpreter lock throughout. The old analysis is freed in the worker thread, and
        the diagnostics are published after that, so an editor that sends requests when it
        sees them does not meet it. The new analysis is frozen out of the collector's view
        (`gc.freeze`): it holds no reference cycles (its IR is trees of frozen nodes), so
        reference counting alone frees it later, and collections stay as cheap as the
        server's own small objects make them."""
        old = self.analyses.get(uri)
        self.analyses[uri] = an
        done = self.worker.submit(_release, [old] if old is not None else [])
        del old
        gc.freeze()
        return done

    def _wake(self, uri: str) -> None:
        """Wake the requests waiting for an analysis of `uri` (they look again at what there is)."""
        self.finished.setdefault(uri, asyncio.Event()).set()
        self.finished[uri] = asyncio.Event()

    async def current(self, uri: str) -> analysis.Analysis | None:
        """The analysis of the document's current text, waiting for it if it is being made."""
        if self.sync:
            return self.analysis(uri)
        while self.is_open(uri):
            an = self.analyses.get(uri)
            if an is not None and an.source.text == self.text(uri):
                return an
            if self.failed.get(uri) == self.text(uri):
                return an
            self.changed(uri)
            await self.finished.setdefault(uri, asyncio.Event()).wait()
        return None

    async def recent(self, uri: str) -> tuple[analysis.Analysis, Moved | None] | None:
        """The last finished analysis, without waiting for a newer one (only for the first), and how
        the text moved since (None: it is the current text)."""
        if self.sync:
            an = self.analysis(uri)
            return (an, None) if an else None
        an = self.analyses.get(uri)
        if an is None:
            an = await self.current(uri)
            return (an, None) if an else None
        text = self.text(uri)
        return an, (None if an.source.text == text else Moved(an.source, text))

    async def in_worker(self, fn, *args):
        """Run a request's work that is linear in the document (rename, references, semantic tokens,
        folding) in the worker thread, so that hover and completion meanwhile still get the
        interpreter lock every millisecond (in the synchronous mode: here, as before)."""
        if self.sync:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self.worker, fn, *args)

    def refuse(self, message: str) -> JsonRpcException:
        return JsonRpcException(message, code=REQUEST_FAILED)


def _references(an: analysis.Analysis, others: list[analysis.Analysis],
                params: lsp.ReferenceParams) -> list[lsp.Location]:
    """Every occurrence of the name at the cursor, in this analysis and the other open ones."""
    t = rename.target_at(an, an.offset(params.position))
    if t is None:
        return []
    seen, out = set(), []
    for a in [an] + [x for x in others if x is not an]:
        for loc in rename.locations(a, t.key, params.context.include_declaration):
            k = (loc.uri, loc.range.start.line, loc.range.start.character)
            if k not in seen:
                seen.add(k)
                out.append(loc)
    return out


def _release(box: list) -> None:
    """Drop the last reference to what `box` holds, in the thread this runs in."""
    box.clear()


def _moved_position(an: analysis.Analysis, moved: Moved | None, pos: lsp.Position) -> lsp.Position:
    """A position in the current text, as a position in the analysed one."""
    if moved is None:
        return pos
    return an.pos(moved.back(moved.new_offset(pos, an.enc)))


def _moved_range(an: analysis.Analysis, moved: Moved | None, rng: lsp.Range | None) -> lsp.Range | None:
    """A range in the analysed text, as a range in the current one."""
    if moved is None or rng is None:
        return rng
    return lsp.Range(start=moved.new_position(moved.forward(an.offset(rng.start)), an.enc),
                     end=moved.new_position(moved.forward(an.offset(rng.end)), an.enc))


def build_server(registry: Registry | None = None, sync: bool | None = None) -> RattanServer:
    server = RattanServer(registry, sync)

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: RattanServer, params: lsp.DidOpenTextDocumentParams) -> None:
        if ls.sync:
            ls.publish(params.text_document.uri)
        else:
            ls.changed(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(ls: RattanServer, params: lsp.DidChangeTextDocumentParams) -> None:
        if not ls.sync:
            ls.changed(params.text_document.uri)
        elif await ls.settle(params.text_document.uri, params.text_document.version):
            ls.publish(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: RattanServer, params: lsp.DidSaveTextDocumentParams) -> None:
        # The saved file may be imported by other open documents (or name a trace they read):
        # check again this one and every open document that imports it.
        saved = analysis.uri_to_path(params.text_document.uri)
        again = [uri for uri, an in list(ls.analyses.items())
                 if uri == params.text_document.uri or (saved and saved in analysis.imported_paths(an))]
        for uri in again:
            ls.analyses.pop(uri, None)
            if ls.sync:
                ls.publish(uri)
            else:
                ls.changed(uri)
        if params.text_document.uri not in again:
            if ls.sync:
                ls.publish(params.text_document.uri)
            else:
                ls.changed(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: RattanServer, params: lsp.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.analyses.pop(uri, None)
        ls.compile_s.pop(uri, None)
        ls.failed.pop(uri, None)
        ls._wake(uri)  # requests still waiting for it see it closed
        ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    # ------------------------------------------------------------ answered from the last analysis
    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    async def hover(ls: RattanServer, params: lsp.HoverParams) -> lsp.Hover | None:
        got = await ls.recent(params.text_document.uri)
        if got is None:
            return None
        an, moved = got
        h = analysis.hover(an, _moved_position(an, moved, params.position))
        if h is not None and moved is not None:
            h.range = _moved_range(an, moved, h.range)
        return h

    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    async def definition(ls: RattanServer, params: lsp.DefinitionParams) -> lsp.Location | None:
        got = await ls.recent(params.text_document.uri)
        if got is None:
            return None
        an, moved = got
        loc = analysis.definition(an, _moved_position(an, moved, params.position))
        if loc is not None and moved is not None and loc.uri == an.uri:
            loc.range = _moved_range(an, moved, loc.range)
        return loc

    @server.feature(lsp.TEXT_DOCUMENT_COMPLETION,
                    lsp.CompletionOptions(trigger_characters=[".", "=", ">", "{", "[", ":", ",", " "]))
    async def completion(ls: RattanServer, params: lsp.CompletionParams) -> lsp.CompletionList:
        got = await ls.recent(params.text_document.uri)
        if got is None:
            return lsp.CompletionList(is_incomplete=False, items=[])
        an, moved = got
        items = analysis.completion(an, params.position, moved)
        return lsp.CompletionList(is_incomplete=False, items=items)

    @server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_HIGHLIGHT)
    async def document_highlight(ls: RattanServer, params: lsp.DocumentHighlightParams):
        got = await ls.recent(params.text_document.uri)
        if got is None:
            return None
        an, moved = got
        out = rename.highlights(an, _moved_position(an, moved, params.position))
        for h in out:
            h.range = _moved_range(an, moved, h.range)
        return out

    @server.feature(lsp.TEXT_DOCUMENT_SIGNATURE_HELP,
                    lsp.SignatureHelpOptions(trigger_characters=["{", ","], retrigger_characters=[" ", "="]))
    async def signature_help(ls: RattanServer, params: lsp.SignatureHelpParams) -> lsp.SignatureHelp | None:
        got = await ls.recent(params.text_document.uri)
        if got is None:
            return None
        an, moved = got
        return features.signature_help(an, params.position, moved)

    # ------------------------------------------------------------ answered from the current text
    @server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    async def document_symbol(ls: RattanServer, params: lsp.DocumentSymbolParams) -> list[lsp.DocumentSymbol]:
        an = await ls.current(params.text_document.uri)
        return analysis.symbols(an) if an else []

    @server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
    async def formatting(ls: RattanServer, params: lsp.DocumentFormattingParams) -> list[lsp.TextEdit] | None:
        an = await ls.current(params.text_document.uri)
        return analysis.formatting(an) if an else None

    @server.feature(lsp.TEXT_DOCUMENT_RANGE_FORMATTING)
    async def range_formatting(ls: RattanServer, params: lsp.DocumentRangeFormattingParams):
        an = await ls.current(params.text_document.uri)
        return features.range_formatting(an, params.range) if an else None

    @server.feature(lsp.TEXT_DOCUMENT_CODE_ACTION,
                    lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix]))
    async def code_action(ls: RattanServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        an = await ls.current(params.text_document.uri)
        return analysis.code_actions(an, params.range) if an else []

    @server.feature(lsp.TEXT_DOCUMENT_REFERENCES)
    async def references(ls: RattanServer, params: lsp.ReferenceParams) -> list[lsp.Location] | None:
        an = await ls.current(params.text_document.uri)
        if an is None:
            return None
        return await ls.in_worker(_references, an, list(ls.analyses.values()), params)

    @server.feature(lsp.TEXT_DOCUMENT_PREPARE_RENAME)
    async def prepare_rename(ls: RattanServer, params: lsp.PrepareRenameParams) -> lsp.Range | None:
        an = await ls.current(params.text_document.uri)
        if an is None:
            return None
        try:
            return rename.prepare(an, params.position)
        except rename.Refused as e:
            raise ls.refuse(str(e)) from None

    @server.feature(lsp.TEXT_DOCUMENT_RENAME, lsp.RenameOptions(prepare_provider=True))
    async def rename_(ls: RattanServer, params: lsp.RenameParams) -> lsp.WorkspaceEdit | None:
        an = await ls.current(params.text_document.uri)
        if an is None:
            return None
        try:
            return await ls.in_worker(rename.rename, list(ls.analyses.values()), an, params.position,
                                      params.new_name)
        except rename.Refused as e:
            raise ls.refuse(str(e)) from None

    @server.feature(lsp.TEXT_DOCUMENT_FOLDING_RANGE)
    async def folding_range(ls: RattanServer, params: lsp.FoldingRangeParams) -> list[lsp.FoldingRange]:
        an = await ls.current(params.text_document.uri)
        return await ls.in_worker(features.folding_ranges, an) if an else []

    @server.feature(lsp.TEXT_DOCUMENT_SEMANTIC_TOKENS_FULL,
                    lsp.SemanticTokensLegend(token_types=list(features.TOKEN_TYPES),
                                             token_modifiers=list(features.TOKEN_MODIFIERS)))
    async def semantic_tokens(ls: RattanServer, params: lsp.SemanticTokensParams) -> lsp.SemanticTokens:
        an = await ls.current(params.text_document.uri)
        return lsp.SemanticTokens(data=await ls.in_worker(features.semantic_tokens, an) if an else [])

    return server


def main() -> int:
    """Serve on stdin/stdout until the editor says exit."""
    # While the worker thread compiles, a request waits for the interpreter lock: ask it back
    # after 1 ms instead of Python's 5 (hover and completion take a few ms of their own).
    sys.setswitchinterval(0.001)
    build_server().start_io()
    return 0
