"""Benchmark: how fast `rattan lsp` answers hover and completion right after an edit, in large files.

For generated files of 1,000 and 10,000 cells (compile_scale.generate), over the server's real
stdio protocol (rattan.tools.lsp.client, as an editor drives it), one iteration is:
  edit, then at once a hover on a cell type of the last channel  -> "hover";
  edit, then at once a completion after `->` in that channel     -> "completion";
  until the diagnostics of that last edit arrive                  -> "diagnostics" (from the edit).
Each edit types one more character of a comment at the end of a line, as typing does.
Two servers answer the same requests in the same run:
  sync   RATTAN_LSP_SYNC=1, the former behaviour: a request compiles the document's new text first;
  async  the default: analyses run debounced in a worker thread, and hover and completion are
         answered from the last finished analysis while a newer one runs.
Baseline, also in the same run: compile_text of the same text in this process (the checks without
optimizing, which is what the server runs). Ratios: sync over async.

Run: python benchmarks/lsp_latency.py [--max 10000] [--repeat 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import _checkout  # noqa: F401,E402  (measure this checkout's rattan: see _checkout.py)
from compile_scale import generate  # noqa: E402

from rattan.compiler import compile_text  # noqa: E402
from rattan.passes.context import Options  # noqa: E402
from rattan.tools.lsp.client import LspClient  # noqa: E402


def median_ms(xs: list[float]) -> float:
    return statistics.median(xs) * 1000


def measure(client: LspClient, uri: str, text: str, repeat: int) -> dict[str, float]:
    """Median ms of hover and completion right after an edit, and of an edit until its diagnostics."""
    lines = text.split("\n")
    client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "rattan",
                                                            "version": 1, "text": text}})
    client.diagnostics(uri, timeout=600)
    # the last channel's `cell up: bw {` line, and its first chain line
    up = max(i for i, line in enumerate(lines) if line.startswith("    cell up: bw"))
    chain = up + 2
    arrow = lines[chain].index("->") + 3
    end = len(lines[up])
    version = 1
    hov, comp, diag = [], [], []

    def edit() -> None:
        """Type one more character of a comment at the end of the last channel's `up` line (the
        file stays valid, and every edit makes a text the server has not seen)."""
        nonlocal version, end
        new = " #" if version == 1 else "x"
        version += 1
        client.notify("textDocument/didChange", {
            "textDocument": {"uri": uri, "version": version},
            "contentChanges": [{"range": {"start": {"line": up, "character": end},
                                          "end": {"line": up, "character": end}}, "text": new}]})
        end += len(new)

    for _ in range(repeat):
        t = time.perf_counter()
        edit()
        h = client.request("textDocument/hover", {"textDocument": {"uri": uri},
                                                  "position": {"line": up, "character": 14}}, 600)
        hov.append(time.perf_counter() - t)
        if "bw" not in str(h.get("result")):
            sys.exit(f"hover did not describe bw: {h}")
        t = time.perf_counter()
        edit()
        c = client.request("textDocument/completion", {"textDocument": {"uri": uri},
                                                       "position": {"line": chain, "character": arrow}}, 600)
        comp.append(time.perf_counter() - t)
        if not c.get("result", {}).get("items"):
            sys.exit(f"completion gave nothing: {c}")
        last = version
        msg = client.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics"
                          and m["params"]["uri"] == uri and m["params"].get("version") == last, 600)
        diag.append(time.perf_counter() - t)
        if msg["params"]["diagnostics"]:
            sys.exit(f"unexpected diagnostics after an edit: {msg['params']['diagnostics'][:2]}")
    client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    client.diagnostics(uri)
    return {"hover": median_ms(hov), "completion": median_ms(comp), "diagnostics": median_ms(diag)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max", type=int, default=10_000, help="largest file, in cells (default 10000)")
    ap.add_argument("--repeat", type=int, default=5, help="measurements per figure; the median is shown")
    a = ap.parse_args()
    sizes = [n for n in (1_000, 10_000, 100_000) if n <= a.max]
    print(f"{'cells':>7} {'compile':>9}   {'hover after an edit':>27}   {'completion after an edit':>27}   "
          f"{'edit to diagnostics':>21}")
    print(f"{'':>7} {'baseline':>9}   {'sync':>8} {'async':>8} {'ratio':>9}   {'sync':>8} {'async':>8} {'ratio':>9}"
          f"   {'sync':>10} {'async':>10}")
    status = 0
    with tempfile.TemporaryDirectory() as d:
        clients = {"sync": LspClient(d, env={"RATTAN_LSP_SYNC": "1"}), "async": LspClient(d, env={"RATTAN_LSP_SYNC": "0"})}
        try:
            for c in clients.values():
                c.initialize()
            for n in sizes:
                text = generate(n)
                base = []
                for _ in range(a.repeat):
                    t = time.perf_counter()
                    comp = compile_text(text, "gen.rtn", options=Options(optimize=False))
                    base.append(time.perf_counter() - t)
                    if not comp.ok:
                        sys.exit(f"the generated file of {n} cells does not compile")
                got = {mode: measure(c, "file://" + os.path.join(d, f"gen{n}-{mode}.rtn"), text, a.repeat)
                       for mode, c in clients.items()}
                s, y = got["sync"], got["async"]
                print(f"{n:>7} {median_ms(base):>6.0f} ms   {s['hover']:>5.0f} ms {y['hover']:>5.1f} ms "
                      f"{s['hover'] / y['hover']:>8.0f}x   {s['completion']:>5.0f} ms {y['completion']:>5.1f} ms "
                      f"{s['completion'] / y['completion']:>8.0f}x   {s['diagnostics']:>7.0f} ms "
                      f"{y['diagnostics']:>7.0f} ms", flush=True)
        finally:
            for c in clients.values():
                status |= c.close()
    print(f"Medians of {a.repeat}, over stdio. hover, completion: from the edit's didChange to the answer. "
          "sync: RATTAN_LSP_SYNC=1 (each request compiles the new text first); async: the default "
          "(answered from the last analysis while the new one compiles in a worker thread).")
    return 0 if status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
