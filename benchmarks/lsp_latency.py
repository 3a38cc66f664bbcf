"""Benchmark: how fast `rattan lsp` answers an editor, against compiling the same text in-process.

For generated files of 100, 1,000 and 10,000 cells (compile_scale.generate), over the server's
real stdio protocol (rattan.tools.lsp.client, as an editor drives it):
  diagnostics  a one-character edit (didChange) until its publishDiagnostics arrives;
  hover        a hover on a cell type in the last channel;
  completion   a completion after `->` in the last channel.
Baseline, measured in the same run: compile_text of the same text in this process (the checks,
without optimizing, which is what the server runs). The ratio is the server's time over the
baseline: what the protocol, the document sync and the answer add to the compile.

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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max", type=int, default=10_000, help="largest file, in cells (default 10000)")
    ap.add_argument("--repeat", type=int, default=5, help="measurements per figure; the median is shown")
    a = ap.parse_args()
    sizes = [n for n in (100, 1_000, 10_000, 100_000) if n <= a.max]
    print(f"{'cells':>7} {'lines':>7}   {'compile (baseline)':>18}   {'diagnostics':>11} {'ratio':>6}   "
          f"{'hover':>8}   {'completion':>10}")
    with tempfile.TemporaryDirectory() as d:
        client = LspClient(d)
        try:
            client.initialize()
            for n in sizes:
                text = generate(n)
                lines = text.split("\n")
                uri = "file://" + os.path.join(d, f"gen{n}.rtn")
                base = []
                for _ in range(a.repeat):
                    t = time.perf_counter()
                    comp = compile_text(text, uri, options=Options(optimize=False))
                    base.append(time.perf_counter() - t)
                    if not comp.ok:
                        sys.exit(f"the generated file of {n} cells does not compile")
                client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "rattan",
                                                                        "version": 1, "text": text}})
                client.diagnostics(uri, timeout=600)
                # the last channel's `cell up: bw {` line, and its first chain line
                up = max(i for i, line in enumerate(lines) if line.startswith("    cell up: bw"))
                chain = up + 2
                arrow = lines[chain].index("->") + 3
                diag, hov, comp_t = [], [], []
                for k in range(a.repeat):
                    # an edit that keeps the file valid: a digit of the last channel's rate flips and back
                    col = lines[up].index("Mbps") - 1
                    new = "1" if k % 2 == 0 else lines[up][col]
                    t = time.perf_counter()
                    client.notify("textDocument/didChange", {
                        "textDocument": {"uri": uri, "version": k + 2},
                        "contentChanges": [{"range": {"start": {"line": up, "character": col},
                                                      "end": {"line": up, "character": col + 1}}, "text": new}]})
                    ds = client.diagnostics(uri, timeout=600)
                    diag.append(time.perf_counter() - t)
                    if ds:
                        sys.exit(f"unexpected diagnostics after an edit: {ds[:2]}")
                    t = time.perf_counter()
                    h = client.request("textDocument/hover", {"textDocument": {"uri": uri},
                                                              "position": {"line": up, "character": 14}}, 600)
                    hov.append(time.perf_counter() - t)
                    if "bw" not in str(h.get("result")):
                        sys.exit(f"hover did not describe bw: {h}")
                    t = time.perf_counter()
                    c = client.request("textDocument/completion", {"textDocument": {"uri": uri},
                                                                   "position": {"line": chain, "character": arrow}},
                                       600)
                    comp_t.append(time.perf_counter() - t)
                    if not c.get("result", {}).get("items"):
                        sys.exit(f"completion gave nothing: {c}")
                client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
                client.diagnostics(uri)
                b, dg = median_ms(base), median_ms(diag)
                print(f"{n:>7} {len(lines):>7}   {b:>15.1f} ms   {dg:>8.1f} ms {dg / b:>5.2f}x   "
                      f"{median_ms(hov):>5.1f} ms   {median_ms(comp_t):>7.1f} ms", flush=True)
        finally:
            status = client.close()
    print(f"Medians of {a.repeat}. diagnostics: an edit until its diagnostics arrive, over stdio; ratio: that over "
          "the baseline compile of the same text in-process. hover and completion: request to response.")
    return 0 if status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
