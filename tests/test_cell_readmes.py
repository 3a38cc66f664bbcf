"""The cell library's READMEs carry tables generated from the schemas, so they cannot drift.

- Each `stdlib_cells/<cell>/README.md` has its parameter table (and the fields of the records its
  parameters take) between `<!-- params: generated from cell.schema.json -->` and `<!-- /params -->`.
- `stdlib_cells/queues/README.md` has one such block per queue kind, each naming its
  `<kind>.schema.json`.
- `stdlib_cells/README.md` has the table of cells (`<!-- cells: ... -->`) and the table of
  `x-rattan` annotations (`<!-- annotations: ... -->`, from rattan/registry/registry.py).

The folders are discovered, not listed: a new `stdlib_cells/<cell>/` is checked with no edit here,
and its README must carry the markers. `RATTAN_REGEN=1 pytest tests/test_cell_readmes.py` rewrites
the tables (review the diff); the prose around them is left as it is.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rattan.registry import default_registry
from rattan.registry.registry import ANNOTATIONS

from tests.conftest import ROOT
from tests.test_docs import REGEN, _cell, _default, _records

CELLS = ROOT / "stdlib_cells"
FOLDERS = sorted(p.parent for p in CELLS.glob("*/cell.schema.json"))
QUEUES = CELLS / "queues"

_BLOCK = re.compile(r"(<!-- (\w+): generated from (\S+) -->\n)(.*?)(<!-- /\2 -->)", re.S)
_UNIT = {"time": "time (ns)", "rate": "rate (bit/s)", "size": "size (bytes)", "probability": "probability (0–1)"}
_PLAIN = {"integer": "int", "number": "float", "boolean": "bool", "string": "string"}


def type_text(prop: dict, plural: bool = False) -> str:
    """A parameter's type as the READMEs write it: its unit, its symbols, its record, or its JSON type."""
    if prop.get("$ref") == "rattan:queue":
        return "queue"
    kind = prop.get("properties", {}).get("kind", {}).get("const")
    if kind:
        return f"`{kind}` record" + "s" * plural
    unit = prop.get("x-unit")
    if unit == "path" and prop.get("x-trace"):
        return f"path ({prop['x-trace']} trace)"
    if unit:
        return _UNIT.get(unit, unit)
    if "const" in prop:
        return f"`{prop['const']}`"
    if prop.get("enum"):
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    if "oneOf" in prop:
        return " or ".join(type_text(b, plural) for b in prop["oneOf"])
    if prop.get("type") == "array":
        return "list of " + type_text(prop.get("items", {}), plural=True)
    return _PLAIN.get(prop.get("type"), prop.get("type", "any"))


def _rows(props: dict, required, runtime: bool) -> list[str]:
    head = "| name | type | default | run time | description |" if runtime else "| name | type | default | description |"
    rows = [head, "|---|---|---|---|---|" if runtime else "|---|---|---|---|"]
    for name, prop in props.items():
        if name == "kind":
            continue
        default = "required" if name in required else _default(prop)
        rt = [("yes" if prop.get("x-runtime") else "no")] if runtime else []
        rows.append("| " + " | ".join([f"`{name}`", type_text(prop), default, *rt,
                                       _cell(prop.get("description", ""))]) + " |")
    return rows


def params_table(schema: dict, reg=None) -> str:
    """The generated part of a cell's README: its parameters, then each record's fields."""
    reg = reg or default_registry()
    props = schema.get("properties", {})
    if not props:
        return "None.\n"
    lines = _rows(props, schema.get("required", ()), runtime=True)
    for kind, rec in _records(reg, props):
        lines += ["", f"### `{kind}` record", "", rec.get("description", ""), ""]
        lines += _rows(rec["properties"], rec.get("required", ()), runtime=False)
    return "\n".join(lines) + "\n"


def queue_table(schema: dict) -> str:
    """The generated part of a queue kind's section: its fields."""
    if not set(schema.get("properties", {})) - {"kind"}:
        return "No fields.\n"
    return "\n".join(_rows(schema["properties"], schema.get("required", ()), runtime=False)) + "\n"


def cells_table(reg=None) -> str:
    """The table of built-in cells: type, ports, what it does, and its README."""
    reg = reg or default_registry()
    rows = ["| cell | outputs | what it does |", "|---|---|---|"]
    for p in FOLDERS:
        ct = reg.get(p.name)
        outs = ct.meta.get("outputs", 1)
        ports = str(outs) if isinstance(outs, int) else "one per routed port"
        rows.append(f"| [`{ct.name}`]({p.name}/README.md) | {ports} | {_cell(ct.description)} |")
    return "\n".join(rows) + "\n"


def annotations_table() -> str:
    rows = ["| key | meaning |", "|---|---|"]
    rows += [f"| `{k}` | {_cell(v)} |" for k, v in ANNOTATIONS.items()]
    return "\n".join(rows) + "\n"


def _check(readme: Path, wanted: dict[tuple[str, str], str]) -> None:
    """The README's generated blocks are exactly `wanted` ((name, source) -> text), or are rewritten."""
    rel = readme.relative_to(ROOT)
    if not readme.exists():
        pytest.fail(f"{rel} is missing: every cell folder has a README")
    text = readme.read_text(encoding="utf-8")
    found = {(m.group(2), m.group(3)) for m in _BLOCK.finditer(text)}
    missing = set(wanted) - found
    assert not missing, f"{rel} has no generated table for " + ", ".join(
        f"`<!-- {n}: generated from {src} -->` ... `<!-- /{n} -->`" for n, src in sorted(missing)) + \
        ": add these markers where the table goes, then run RATTAN_REGEN=1 pytest tests/test_cell_readmes.py"
    assert found <= set(wanted), f"{rel}: generated blocks for nothing known: {sorted(found - set(wanted))}"
    new = _BLOCK.sub(lambda m: m.group(1) + wanted[(m.group(2), m.group(3))] + m.group(5), text)
    if REGEN:
        readme.write_text(new, encoding="utf-8")
        return
    assert new == text, f"{rel}: its tables differ from the schemas: run with RATTAN_REGEN=1 " \
        "(RATTAN_REGEN=1 pytest tests/test_cell_readmes.py) and review the diff"


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_a_cells_readme_table_is_its_schema(folder):
    schema = json.loads((folder / "cell.schema.json").read_text(encoding="utf-8"))
    _check(folder / "README.md", {("params", "cell.schema.json"): params_table(schema)})


def test_the_queue_kinds_tables_are_their_schemas():
    wanted = {("params", p.name): queue_table(json.loads(p.read_text(encoding="utf-8")))
              for p in sorted(QUEUES.glob("*.schema.json"))}
    _check(QUEUES / "README.md", wanted)


def test_the_library_readme_lists_every_cell_and_annotation():
    _check(CELLS / "README.md", {("cells", "*/cell.schema.json"): cells_table(),
                                 ("annotations", "rattan/registry/registry.py"): annotations_table()})


def test_the_check_discovers_folders_and_refuses_a_readme_without_markers(tmp_path, monkeypatch):
    assert {p.name for p in FOLDERS} >= {"bw", "router", "pass"} and QUEUES not in FOLDERS
    readme = tmp_path / "README.md"
    readme.write_text("# new\n\n| name | type |\n")
    monkeypatch.setattr("tests.test_cell_readmes.ROOT", tmp_path)
    with pytest.raises(AssertionError, match="no generated table for `<!-- params: generated from cell.schema.json"):
        _check(readme, {("params", "cell.schema.json"): "None.\n"})
    readme.write_text("<!-- params: generated from cell.schema.json -->\n| stale |\n<!-- /params -->\n")
    monkeypatch.setattr("tests.test_cell_readmes.REGEN", False)
    with pytest.raises(AssertionError, match="run with RATTAN_REGEN=1"):
        _check(readme, {("params", "cell.schema.json"): "None.\n"})
