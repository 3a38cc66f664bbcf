"""The shipped JSON Schemas are valid, and the reference documents satisfy them."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator
from jsonschema.validators import validator_for

from tests.conftest import ROOT

SCHEMAS = sorted((ROOT / "schemas").glob("*.schema.json"))


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda p: p.name)
def test_schema_is_valid(path):
    schema = json.loads(path.read_text())
    validator_for(schema).check_schema(schema)


@pytest.mark.parametrize("name", ["broadband.toml", "broadband.yaml"])
def test_reference_documents_match_the_document_schema(name):
    schema = json.loads((ROOT / "schemas" / "document.schema.json").read_text())
    text = (ROOT / "examples" / name).read_text()
    doc = tomllib.loads(text) if name.endswith(".toml") else yaml.safe_load(text)
    errors = list(validator_for(schema)(schema).iter_errors(doc))
    assert not errors, [e.message for e in errors]


def test_schema_command_prints_the_shipped_schema(run_cli):
    code, out, _ = run_cli("schema")
    assert code == 0 and json.loads(out) == json.loads((ROOT / "schemas" / "document.schema.json").read_text())
    code, out, _ = run_cli("schema", "--plan")
    assert json.loads(out)["title"] == "Rattan execution plan"


def test_schema_output_writes_the_file_and_path_names_the_installed_one(run_cli, tmp_path):
    out = tmp_path / "editor" / "document.schema.json"
    out.parent.mkdir()
    code, printed, _ = run_cli("schema", "--output", str(out))
    assert code == 0 and printed == ""
    code, printed, _ = run_cli("schema", "--path")
    installed = Path(printed.strip())
    assert code == 0 and installed.is_absolute()
    assert out.read_bytes() == installed.read_bytes() == (ROOT / "schemas" / "document.schema.json").read_bytes()
    code, printed, _ = run_cli("schema", "--plan", "--path")
    assert Path(printed.strip()).name == "plan.schema.json"


@pytest.mark.parametrize("path", sorted((ROOT / "stdlib_cells").glob("*/cell.schema.json")),
                         ids=lambda p: p.parent.name)
def test_cell_schema_follows_conventions(path):
    s = json.loads(path.read_text())
    Draft202012Validator.check_schema(s)
    assert s["title"] == path.parent.name
    assert s.get("additionalProperties") is False
    for name, prop in s["properties"].items():
        assert prop.get("description"), f"{name} has no description"
        assert prop.get("x-unit") in (None, "time", "rate", "size", "probability", "path", "prefix"), name


# ---- the document schema for editors (tests/editors/test_schema_servers.py runs it in the servers) ----
DOCUMENT = json.loads((ROOT / "schemas" / "document.schema.json").read_text())


def test_document_schema_is_draft_07_with_a_url_id():
    """draft-07: Taplo does not apply 2020-12's `dependentRequired`; yaml-language-server reads both."""
    assert DOCUMENT["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert DOCUMENT["$id"].startswith("https://") and DOCUMENT["$id"].endswith("/document.schema.json")


def cell_dispatch(cell: dict) -> list[tuple[str, str]]:
    """(type, $ref) in the order of the cell's if/then/else chain on `type`."""
    found, node = [], cell
    while "if" in node:
        found.append((node["if"]["properties"]["type"]["const"], node["then"]["$ref"]))
        node = node.get("else", {})
    return found


def test_document_schema_gives_each_cell_type_exactly_its_front_end_keys():
    from rattan.frontends.upstream import _CELL_KEYS
    cell = DOCUMENT["$defs"]["cell"]
    assert "oneOf" not in cell and "anyOf" not in cell
    assert cell["properties"]["type"]["enum"] == list(_CELL_KEYS)
    dispatch = cell_dispatch(cell)
    assert [t for t, _ in dispatch] == list(_CELL_KEYS)
    for t, ref in dispatch:
        assert ref == f"#/$defs/{t}"
        definition = DOCUMENT["$defs"][t]
        assert set(definition["properties"]) == {"type", *_CELL_KEYS[t]}, t
        if t == "Custom":  # built by a program: its keys are its own
            assert "additionalProperties" not in definition
            continue
        # an unknown key fails whatever its value
        unknown = definition["additionalProperties"]
        assert unknown["then"]["const"] == unknown["then"]["not"]["const"], t


def test_every_description_in_the_document_schema_has_a_markdown_description():
    missing = []

    def walk(node, where):
        if isinstance(node, dict):
            if "description" in node and node.get("markdownDescription") != node["description"]:
                missing.append(where)
            for k, v in node.items():
                walk(v, f"{where}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}/{i}")
    walk(DOCUMENT, "")
    assert not missing


@pytest.mark.parametrize("kind, cell", [
    ("rate", 'type = "Bw"\nbandwidth = "{}"\nqueue = "Infinite"\n'),
    ("time", 'type = "Delay"\ndelay = "{}"\n'),
    ("size", 'type = "TokenBucket"\nrate = "1Mbps"\nburst = "{}"\n'),
])
def test_quantity_examples_match_their_pattern_and_the_front_end_reads_them(kind, cell):
    import re
    from tests.frontends.test_upstream import load
    definition = DOCUMENT["$defs"][kind]
    assert definition["errorMessage"] and definition["examples"]
    # a string that does not match fails a const that says what fits (Taplo's message), whatever it is
    readable = definition["then"]
    assert readable["const"] == readable["not"]["const"] and readable["errorMessage"] == definition["errorMessage"]
    assert definition["if"]["not"]["type"] == "string" and not {"type", "pattern"} & set(definition)
    assert f"`{definition['examples'][0]}`" in readable["const"]
    for example in definition["examples"]:
        assert re.search(definition["if"]["not"]["pattern"], example), example
        assert example in definition["errorMessage"] or kind == "rate" and example == "1Gbps"
        loaded = load("[cells.c]\n" + cell.format(example) + '[links]\nleft = "c"\nc = "right"\n')
        assert not any(d.is_error for d in loaded.diags), (example, loaded.diags)
