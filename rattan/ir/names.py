"""What the compiler's name resolution found, as data: every definition and every use, with spans.

The passes that resolve names (`resolve_names`, `lower_body`, `expand_compounds`, `evaluate`,
`check_timeline`) record here each name they bind and each use they resolve to a binding, so
that tools (the language server's references, rename and highlight) follow exactly the
compiler's scoping rules instead of guessing from the text. Spans carry their source id, so a
use in one file may point at a definition in an imported one.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..source import Span

# Which names can stand for one another: a rename must not make two of one group collide.
GROUPS = {"let": "value", "param": "value", "type": "value", "module": "value",
          "cell": "graph", "endpoint": "graph"}


@dataclass(frozen=True)
class Definition:
    """A name as declared: `let rtt`, `cell type link`, `cell up`, an endpoint, a parameter, an alias."""
    name: str
    kind: str  # "let" | "param" | "type" | "module" | "cell" | "endpoint"
    span: Span  # the declared name itself


@dataclass(frozen=True)
class Use:
    """One written occurrence of a name (or of one part of a dotted name) and what it resolved to."""
    span: Span
    target: Span  # the Definition's span


@dataclass
class NameIndex:
    """Definitions by span and uses by span; a compound body lowered per instance records once."""
    definitions: dict[Span, Definition] = field(default_factory=dict)
    uses: dict[Span, Use] = field(default_factory=dict)

    def define(self, name: str, kind: str, span: Span | None) -> None:
        if span is not None and span.end > span.start:
            self.definitions.setdefault(span, Definition(name, kind, span))

    def use(self, span: Span | None, target: Span | None) -> None:
        if span is not None and target is not None and target.end > target.start and span != target:
            self.uses.setdefault(span, Use(span, target))

    def use_parts(self, text: str, name, targets) -> None:
        """Record each part of a dotted name (an `ast.Name` such as `lib.link`, written in `text`)
        as a use of targets[i] (None: a part that names nothing to rename, such as a built-in
        parameter)."""
        for sp, target in zip(part_spans(text, name.span, name.parts), targets):
            self.use(sp, target)

    def uses_of(self, target: Span) -> list[Use]:
        return [u for u in self.uses.values() if u.target == target]


def part_spans(text: str, span: Span, parts: tuple[str, ...]) -> list[Span]:
    """The span of each part of a dotted name (`up.bw.rate`) written at `span` in `text`
    (the parser keeps one span for the whole name; blanks may sit around the dots)."""
    out, pos = [], span.start
    for part in parts:
        i = text.find(part, pos, span.end)
        if i < 0:  # written otherwise (a quoted key of a TOML/YAML file): the whole name
            return [span] * len(parts) if len(parts) == 1 else []
        out.append(Span(span.source, i, i + len(part)))
        pos = i + len(part)
    return out
