"""The documentation says what the code does.

- The README names what `.ci/run` installs, and its real run uses the example's endpoint names.
- docs/diagnostics.md lists every diagnostic code, exactly as the code table has it.
- Every code block of docs/language.md checks, or fails, as its info string says (below).
- The cell and queue tables of docs/language.md are generated from the schemas; a test
  regenerates them and compares. `RATTAN_REGEN=1 pytest tests/test_docs.py` rewrites them.

Code blocks of docs/language.md, by info string:

    ```rtn                     a whole file; `rattan check` reports nothing at all
    ```rtn fails=RTN021        a whole file; `rattan check` reports exactly these codes (exit 1),
                               which a comment in the block names (`# error RTN021: why`)
    ```rtn warns=RTN090        a whole file; exactly these warnings and no error (exit 0)
    ```rtn fragment            part of a file (a synopsis, a value): not checked on its own
    ```toml / ```yaml          a whole upstream document, checked like an `rtn` block
    ```LANG file=PATH          written to PATH in the doc's folder, so that later blocks can
                               import it or name it as a trace (other blocks get a name of their own)
    ```console                 `$ rattan check PATH` then its exact output, on a block above
                               (RATTAN_REGEN=1 rewrites it: review the diff)
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import pytest

from rattan.diagnostics.codes import CODES
from rattan.registry import default_registry
from rattan.tools.cells import _type_name, default_text
from rattan.units import number_text

from tests.conftest import ROOT

LANGUAGE = ROOT / "docs" / "language.md"
REGEN = os.environ.get("RATTAN_REGEN") == "1"
CHECKED = {"rtn": ".rtn", "toml": ".toml", "yaml": ".yaml"}


def test_every_code_is_documented():
    doc = (ROOT / "docs" / "diagnostics.md").read_text()
    for c in CODES.values():
        assert f"| `{c.id}` | {c.severity} | {c.title} |" in doc, c.id


# -- the README

README = ROOT / "README.md"


def test_readme_names_every_package_ci_installs():
    ci = (ROOT / ".ci" / "run").read_text()
    packages = re.findall(r'missing="\$missing ([\w.-]+)"', ci)
    assert len(packages) >= 5
    readme = README.read_text(encoding="utf-8")
    for p in packages:
        assert f"`{p}`" in readme, p


def test_readme_starts_with_the_two_commands():
    first = doc_blocks(README.read_text(encoding="utf-8"))[0]
    assert first.text == "pip install -e '.[test]' && rattan compile examples/broadband.rtn\npytest\n"


def test_readme_experiment_loads_and_expands(tmp_path):
    """The README's sweep is a valid experiment over the example it names: 2 x 2 x 3 seeds."""
    import shutil

    from rattan.batch.experiment import load
    (block,) = [b for b in doc_blocks(README.read_text(encoding="utf-8")) if "workload:" in b.text]
    (tmp_path / "sweep.yaml").write_text(block.text)
    shutil.copy(ROOT / "examples" / "broadband.rtn", tmp_path)
    jobs = load(str(tmp_path / "sweep.yaml")).jobs()
    assert len(jobs) == 12
    assert {j.lets["rtt"] for j in jobs} == {"20ms", "80ms"}
    assert any("-C bbr" in s["command"] for j in jobs for s in j.workload)


def test_readme_run_names_the_example_s_endpoints(run_cli):
    readme = README.read_text(encoding="utf-8")
    m = re.search(r"^rattan run (\S+) .*-- sh -c '(.*)'$", readme, re.M)
    assert m, "the README shows a real run with sh -c"
    code, out, _ = run_cli("compile", m.group(1))
    assert code == 0
    endpoints = {e.upper() for c in json.loads(out)["channels"] for e in c["endpoints"]}
    used = set(re.findall(r"\$RATTAN_(\w+)_IP", m.group(0)))
    assert used and used <= endpoints, (used, endpoints)


# -- code blocks

_FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.M | re.S)


@dataclass
class Block:
    """One fenced block: the line its text starts on, its language, info-string attributes, text."""
    line: int
    lang: str
    text: str
    attrs: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return self.attrs.get("file") or f"block_{self.line}{CHECKED.get(self.lang, '.txt')}"

    @property
    def checked(self) -> bool:
        return self.lang in CHECKED and "fragment" not in self.attrs

    def codes(self, key: str) -> set[str]:
        return {c for c in self.attrs.get(key, "").split(",") if c}


def doc_blocks(text: str) -> list[Block]:
    """Every fenced block of a Markdown text, in order."""
    out = []
    for m in _FENCE.finditer(text):
        lang, *rest = m.group(1).split() or [""]
        attrs = dict(a.partition("=")[::2] for a in rest)
        out.append(Block(text.count("\n", 0, m.start(2)) + 1, lang, m.group(2), attrs))
    return out


BLOCKS = doc_blocks(LANGUAGE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def doc_dir(tmp_path_factory) -> Path:
    """Every block of the doc written to a folder of its own, each under its path."""
    d = tmp_path_factory.mktemp("language_md")
    for b in BLOCKS:
        if b.checked or "file" in b.attrs:
            p = d / b.path
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(b.text, encoding="utf-8")
    return d


def rattan_check(folder: Path, path: str, *flags: str) -> tuple[int, str, str]:
    """`rattan check` run in folder: its exit status, what it printed to stdout and to stderr."""
    import contextlib
    import io

    from rattan.cli import main

    out, err = io.StringIO(), io.StringIO()
    here = os.getcwd()
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["check", *flags, path])
    finally:
        os.chdir(here)
    return code, out.getvalue(), err.getvalue()


def test_the_reference_has_blocks_of_every_kind():
    # guards the fence pattern: a doc whose blocks were all skipped would pass the tests below
    kinds = {(b.lang, bool(b.codes("fails"))) for b in BLOCKS if b.checked}
    assert {("rtn", False), ("rtn", True), ("toml", False), ("yaml", False)} <= kinds
    assert sum(b.checked for b in BLOCKS) >= 40
    assert any(b.lang == "console" for b in BLOCKS)


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.checked], ids=lambda b: f"line{b.line}")
def test_every_block_checks_as_it_says(block, doc_dir):
    code, out, err = rattan_check(doc_dir, block.path, "--format", "json")
    assert code in (0, 1), f"docs/language.md:{block.line}: {err}"
    found = sorted({d["code"] for d in json.loads(out)})
    expected = sorted(block.codes("fails") | block.codes("warns"))
    where = f"docs/language.md:{block.line} ({block.lang} {' '.join(f'{k}={v}' for k, v in block.attrs.items())})"
    # the info string does not show once rendered: a comment in the block tells the reader
    assert all(c in block.text for c in expected), f"{where}: say `# error CODE: why` in the block"
    assert found == expected, f"{where}: `rattan check` reported {found or 'nothing'}:\n" \
        + rattan_check(doc_dir, block.path)[2]
    assert code == (1 if block.codes("fails") else 0), where


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "console"], ids=lambda b: f"line{b.line}")
def test_every_shown_output_is_what_rattan_prints(block, doc_dir):
    command, _, shown = block.text.partition("\n")
    m = re.fullmatch(r"\$ rattan check (\S+)", command)
    assert m, f"docs/language.md:{block.line}: a console block starts with `$ rattan check FILE`"
    _, out, err = rattan_check(doc_dir, m.group(1))
    out += err
    if REGEN and out != shown:
        text = LANGUAGE.read_text(encoding="utf-8")
        LANGUAGE.write_text(text.replace(f"{command}\n{shown}```", f"{command}\n{out}```", 1), encoding="utf-8")
        return
    assert out == shown, f"docs/language.md:{block.line}"


@pytest.mark.parametrize("page", [README, LANGUAGE], ids=lambda p: p.name)
def test_links_lead_somewhere(page):
    text = page.read_text(encoding="utf-8")
    anchors = {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-")
               for h in re.findall(r"^#+ (.*)$", _FENCE.sub("", text), re.M)}
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        if path:
            assert (page.parent / path).exists(), f"{page.name}: link to {target}"
        else:
            assert anchor in anchors, f"{page.name}: link to #{anchor}"


# -- the tables of cells and queues, generated from the schemas

_GENERATED = re.compile(r"(<!-- generated: (\w+) .*?-->\n)(.*?)(<!-- end generated -->)", re.S)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _default(prop) -> str:
    if "default" not in prop:
        return "unset"
    if prop.get("x-unit") == "probability":  # a float default: 0.1 is 10%, not 0.1000000000000000055%
        return f"`{number_text(Fraction(str(prop['default'])) * 100)}%`"
    return f"`{default_text(prop)}`"


def _type(reg, prop) -> str:
    if prop.get("$ref") == "rattan:queue":
        return "queue"
    t = _type_name(reg, prop)
    return {"time": "time", "rate": "rate", "size": "size"}.get(t, t)


def _table(reg, props, required, runtime: bool) -> list[str]:
    head = "| parameter | type | default | run time | meaning |" if runtime else "| field | type | default | meaning |"
    rows = [head, "|---|---|---|---|---|" if runtime else "|---|---|---|---|"]
    for name, prop in props.items():
        if name == "kind":
            continue
        default = "required" if name in required else _default(prop)
        rt = [("yes" if prop.get("x-runtime") else "no")] if runtime else []
        rows.append("| " + " | ".join([f"`{name}`", _cell(_type(reg, prop)), default, *rt,
                                       _cell(prop.get("description", ""))]) + " |")
    return rows


def _records(reg, props):
    """Tagged records a parameter takes (`gilbert_elliott { ... }`, `route { ... }`), not queues."""
    for prop in props.values():
        if prop.get("$ref") == "rattan:queue":
            continue
        items = prop.get("items") if isinstance(prop.get("items"), dict) else None
        for b in prop.get("oneOf", []) + ([items] if items else []) + (items.get("oneOf", []) if items else []):
            kind = b.get("properties", {}).get("kind", {}).get("const")
            if kind:
                yield kind, b


def queues_section(reg) -> str:
    """Every queue kind: summary, its fields, its longer doc."""
    lines = []
    for kind in sorted(reg.queues):
        q = reg.queues[kind]
        lines += [f"### `{kind}`", "", q.get("description", ""), ""]
        if set(q.get("properties", {})) - {"kind"}:
            lines += _table(reg, q["properties"], q.get("required", ()), runtime=False) + [""]
        else:
            lines += [f"No fields: write `queue = {kind}`.", ""]
        if q.get("x-rattan", {}).get("doc"):
            lines += [q["x-rattan"]["doc"], ""]
    return "\n".join(lines)


def test_cell_and_queue_tables_are_the_schemas():
    reg = default_registry()
    sections = {"queues": queues_section(reg)}
    text = LANGUAGE.read_text(encoding="utf-8")
    found = {m.group(2) for m in _GENERATED.finditer(text)}
    assert found == set(sections), f"docs/language.md has generated parts {found}"
    new = _GENERATED.sub(lambda m: m.group(1) + "\n" + sections[m.group(2)] + m.group(4), text)
    if REGEN:
        LANGUAGE.write_text(new, encoding="utf-8")
        return
    assert new == text, "docs/language.md's tables differ from the schemas: " \
        "RATTAN_REGEN=1 pytest tests/test_docs.py rewrites them"


# -- docs/batch.md: experiment files
#
#     ```yaml experiment file=PATH    an experiment file that loads (its topologies compile)
#     ```yaml experiment fails=RTX003 one that fails with exactly these codes, named in a comment
#     ```rtn file=PATH                a topology the experiment blocks name

BATCH = ROOT / "docs" / "batch.md"
BATCH_BLOCKS = doc_blocks(BATCH.read_text(encoding="utf-8"))
EXPERIMENT_BLOCKS = [b for b in BATCH_BLOCKS if b.lang == "yaml" and "experiment" in b.attrs]


@pytest.fixture(scope="module")
def batch_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("batch_md")
    for b in BATCH_BLOCKS:
        if "file" in b.attrs or b in EXPERIMENT_BLOCKS:
            (d / b.path).write_text(b.text, encoding="utf-8")
    return d


def test_batch_md_lists_every_experiment_code():
    from rattan.batch.experiment import CODES as RTX
    doc = BATCH.read_text(encoding="utf-8")
    for code, title in RTX.items():
        assert f"| `{code}` | {title} |" in doc, code


def _schema_keys(schema: dict):
    for name, prop in (schema.get("properties") or {}).items():
        yield name
        for sub in [prop, prop.get("items") or {}, prop.get("additionalProperties") or {}]:
            if isinstance(sub, dict):
                yield from _schema_keys(sub)


def test_batch_md_documents_every_key_of_the_experiment_schema():
    from rattan.batch.experiment import schema
    doc = BATCH.read_text(encoding="utf-8")
    keys = set(_schema_keys(schema()))
    assert {"workload", "endpoint", "telemetry", "facet_rows", "cores"} <= keys  # the walk reaches them
    for key in keys:
        assert f"| `{key}` |" in doc, f"docs/batch.md has no table row for `{key}`"
    full = next(b for b in EXPERIMENT_BLOCKS if b.attrs.get("file") == "full.yaml")
    import yaml
    doc_keys = set(yaml.safe_load(full.text)) | {k for s in yaml.safe_load(full.text)["workload"] for k in s}
    assert (keys - {"$schema", "packet_log", "telemetry", "cores", "instances", "metric", "x", "lines", "facet",
                    "facet_rows", "output", "title", "ylabel", "scale"}) <= doc_keys, "the complete example lacks some"


def test_batch_md_has_experiment_blocks_of_both_kinds():
    assert sum(not b.codes("fails") for b in EXPERIMENT_BLOCKS) >= 3
    assert any(b.codes("fails") for b in EXPERIMENT_BLOCKS)


@pytest.mark.parametrize("block", EXPERIMENT_BLOCKS, ids=lambda b: f"line{b.line}")
def test_every_experiment_block_loads_or_fails_as_it_says(block, batch_dir):
    from rattan.batch.experiment import ExperimentError, load
    expected = sorted(block.codes("fails"))
    assert all(c in block.text for c in expected), f"docs/batch.md:{block.line}: say `# error CODE: why`"
    try:
        exp = load(str(batch_dir / block.path))
    except ExperimentError as e:
        assert sorted({d.code for d in e.diagnostics}) == expected, f"docs/batch.md:{block.line}:\n{e}"
        return
    assert not expected, f"docs/batch.md:{block.line} loads, but says it fails with {expected}"
    assert exp.jobs()


def test_batch_md_links_lead_somewhere():
    test_links_lead_somewhere(BATCH)


@pytest.mark.parametrize("block", [b for b in BATCH_BLOCKS if b.lang == "console"], ids=lambda b: f"line{b.line}")
def test_batch_md_shows_what_rattan_check_prints(block, batch_dir):
    command, _, shown = block.text.partition("\n")
    m = re.fullmatch(r"\$ rattan check (\S+)", command)
    assert m, f"docs/batch.md:{block.line}: a console block starts with `$ rattan check FILE`"
    _, out, err = rattan_check(batch_dir, m.group(1))
    assert out + err == shown, f"docs/batch.md:{block.line}"
