"""What every pass receives besides the IR: sources, the diagnostic sink, the registry, options."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..diagnostics import Sink
from ..ir.names import NameIndex
from ..registry import Registry
from ..source import SourceMap


@dataclass
class Options:
    """Compiler switches (see `rattan compile --help`)."""
    optimize: bool = True
    # Assume no control API will touch this plan: no-op named cells may go too.
    freeze: bool = False
    # `let`s of the entry file set from outside (`--let NAME=VALUE`): name -> .rtn expression text.
    lets: dict[str, str] = field(default_factory=dict)


@dataclass
class Context:
    sources: SourceMap
    sink: Sink
    registry: Registry
    options: Options = field(default_factory=Options)
    names: NameIndex = field(default_factory=NameIndex)  # what name resolution found
