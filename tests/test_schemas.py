"""The shipped JSON Schemas are valid, and the reference documents satisfy them."""
from __future__ import annotations

import json
import tomllib

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
