"""`rattan convert`: upstream Rattan TOML/YAML to `.rtn`, through the shared AST and the formatter."""
from __future__ import annotations

import json
import os

from ..diagnostics import Sink
from ..passes.reading import read_text
from ..source import SourceMap
from .fmt import format_file


def convert_path(path: str):
    """(text or None, sources, diagnostics) for a TOML or YAML file."""
    from ..compiler import front_end
    from ..frontends.upstream import load_document
    text, _bad = read_text(path)
    sources = SourceMap()
    src = sources.add(path, text, os.path.abspath(path))
    kind = front_end(src)
    if kind == "rtn":
        from ..passes.reading import InputError
        raise InputError(f"{path}: convert reads upstream TOML (any extension but .rtn) or YAML "
                         "(.yaml, .yml) files")
    sink = Sink()
    file = load_document(src, sink, kind)
    if sink.has_errors:
        return None, sources, sink.sorted()
    header = [f"# Converted from {os.path.basename(path)} by `rattan convert`."]
    settings = dict(file.settings)
    if settings:
        header.append("# Run settings of the original that .rtn does not express:")
        for k in sorted(settings):
            header.append(f"#   [{k}] {json.dumps(settings[k], sort_keys=True)}")
    body = format_file(file, None)
    # A blank line between top-level statements reads better than the AST's packed form.
    return "\n".join(header) + "\n\n" + body, sources, sink.sorted()
