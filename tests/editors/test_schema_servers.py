"""`rattan schema` in the real YAML and TOML language servers (yaml-language-server, Taplo), driven
over stdio: a misspelt key, a value of the wrong type and a bad rate, time or size each give one
readable message on the key's line, completion of `type` offers every upstream cell type, a cell is
offered its own type's keys and no other's (Taplo, which completes by key path only, none once
`type` is written; `rattan lsp`, which editors run beside it, exactly its type's), and a document
anywhere finds the schema by the installed path or by its name.

Needs node and `npm ci --prefix tests/editors` (.ci/run does both); skipped with a message without."""
from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from rattan.frontends.upstream import _CELL_KEYS, _CELL_MAPPERS
from tests.conftest import EXAMPLES, ROOT
from tests.editors.servers import StdioServer, node_or_skip, taplo_server_command, yaml_server_command

EXTENSION = ROOT / "editors" / "vscode"
UPSTREAM_TYPES = set(_CELL_MAPPERS)  # the 11 types a document can describe (`Custom` cannot)
CORPUS = ROOT / "tests" / "frontends" / "upstream"


@pytest.fixture(scope="module")
def schema(tmp_path_factory) -> Path:
    """The schema as `rattan schema --output` writes it."""
    out = tmp_path_factory.mktemp("schema") / "document.schema.json"
    subprocess.run([sys.executable, "-m", "rattan", "schema", "--output", str(out)], check=True, cwd=ROOT)
    return out


def yaml_settings(associations: dict[str, list[str]] | None = None) -> dict:
    return {"yaml": {"validate": True, "completion": True, "hover": True, "schemas": associations or {}}}


@pytest.fixture(scope="module")
def yaml_ls(schema):
    """yaml-language-server with the schema for `*.rattan.yaml`, as a `yaml.schemas` setting."""
    server = StdioServer(yaml_server_command(), yaml_settings({schema.as_uri(): ["*.rattan.yaml"]}))
    schema_loaded(server, "yaml")
    yield server
    server.close()


@pytest.fixture(scope="module")
def taplo(schema):
    """Taplo with the schema for `*.rattan.toml`, as Even Better TOML sends a `tomlValidation` rule."""
    server = StdioServer(taplo_server_command(), {"evenBetterToml": {"schema": {"enabled": True}}},
                         init_options={"configurationSection": "evenBetterToml"})
    server.notify("taplo/associateSchema", {"schemaUri": schema.as_uri(), "priority": 10,
                                            "rule": {"glob": "**/*.rattan.toml"}, "meta": {"source": "test"}})
    schema_loaded(server, "toml")
    yield server
    server.close()


def schema_loaded(server: StdioServer, suffix: str) -> None:
    """Waits for the server to report a mistake against the schema, so that a test that expects no
    diagnostics does not pass only because the schema was still loading (Taplo first publishes
    its syntax check's empty list)."""
    uri = f"file:///rattan-schema-probe/probe.rattan.{suffix}"
    server.open(uri, '[cells.c]\ntype = "Nope"\n' if suffix == "toml" else "cells:\n  c:\n    type: Nope\n", suffix)
    assert server.diagnostics(uri, some=True, timeout=60), "the schema gave no diagnostics"


_count = iter(range(10**6))


def doc_uri(tmp_path: Path, suffix: str) -> str:
    """A new document name (servers keep what was opened), matched by the association."""
    return (tmp_path / f"doc{next(_count)}.rattan.{suffix}").as_uri()


def line_of(text: str, needle: str) -> int:
    (line,) = [i for i, s in enumerate(text.splitlines()) if needle in s]
    return line


def position_after(text: str, needle: str) -> tuple[int, int]:
    line = line_of(text, needle)
    return line, text.splitlines()[line].index(needle) + len(needle)


# ---- one precise message at the key ------------------------------------------------------------
YAML_TYPO = """\
cells:
  up:
    type: Bw
    bandwidht: 20Mbps
    queue: Infinite
links:
  left: up
  up: right
"""
TOML_TYPO = """\
[cells.up]
type = "Bw"
bandwidht = "20Mbps"
queue = "Infinite"

[links]
left = "up"
up = "right"
"""
YAML_WRONG_TYPE = """\
cells:
  d:
    type: Delay
    delay: 5
links:
  left: d
  d: right
"""
TOML_WRONG_TYPE = """\
[cells.d]
type = "Delay"
delay = 5

[links]
left = "d"
d = "right"
"""
BW_KEYS = "`type`, `bandwidth`, `queue`, `queue_config` and `bw_type`"


def test_yaml_misspelt_key_gives_one_message_naming_the_keys(yaml_ls, tmp_path):
    uri = doc_uri(tmp_path, "yaml")
    yaml_ls.open(uri, YAML_TYPO, "yaml")
    (d,) = yaml_ls.diagnostics(uri, some=True)
    assert d["range"]["start"]["line"] == line_of(YAML_TYPO, "bandwidht")
    assert d["message"] == f"Unknown key. A Bw cell takes only {BW_KEYS}."


def test_toml_misspelt_key_gives_one_message_on_the_key(taplo, tmp_path):
    uri = doc_uri(tmp_path, "toml")
    taplo.open(uri, TOML_TYPO, "toml")
    (d,) = taplo.diagnostics(uri, some=True)
    line = line_of(TOML_TYPO, "bandwidht")
    assert d["range"] == {"start": {"line": line, "character": 0}, "end": {"line": line, "character": 9}}
    # Taplo prints a failed `const` as '"<const>" was expected': the schema's text names the keys
    assert d["message"] == f'"A Bw cell takes only {BW_KEYS} (this key is not one of them)" was expected'


def test_yaml_value_of_the_wrong_type_gives_one_readable_message(yaml_ls, tmp_path):
    uri = doc_uri(tmp_path, "yaml")
    yaml_ls.open(uri, YAML_WRONG_TYPE, "yaml")
    (d,) = yaml_ls.diagnostics(uri, some=True)
    assert d["range"]["start"]["line"] == line_of(YAML_WRONG_TYPE, "delay: 5")
    assert d["message"].startswith('A time is a string: a number with a unit, such as "20ms"')


def test_toml_value_of_the_wrong_type_gives_one_message_on_the_key(taplo, tmp_path):
    uri = doc_uri(tmp_path, "toml")
    taplo.open(uri, TOML_WRONG_TYPE, "toml")
    (d,) = taplo.diagnostics(uri, some=True)
    line = line_of(TOML_WRONG_TYPE, "delay = 5")
    assert d["range"]["start"] == {"line": line, "character": 0}
    # not Taplo's '5 is not of type "string"': the schema's const says what fits
    assert d["message"].startswith('"a time with a unit, such as `20ms`') and d["message"].endswith('" was expected')


BAD_QUANTITIES = [  # (what, cell with {}, a value of the right type that is no such quantity, examples)
    ("rate", 'type = "Bw"\nbandwidth = {}\nqueue = "Infinite"', '"12 Mbit"', ["20Mbps", "1Gbps 200Mbps"]),
    ("time", 'type = "Delay"\ndelay = {}', '"5 parsecs"', ["20ms", "1.5s"]),
    ("size", 'type = "TokenBucket"\nrate = "1Mbps"\nburst = {}', '"10 parsecs"', ["1500B", "64KiB"]),
]


@pytest.mark.parametrize("kind, cell, bad, examples", BAD_QUANTITIES, ids=[q[0] for q in BAD_QUANTITIES])
def test_yaml_bad_quantity_says_what_fits_not_the_regular_expression(yaml_ls, tmp_path, kind, cell, bad, examples):
    body = cell.format(bad).replace(" = ", ": ").replace('"', "")
    text = "cells:\n  c:\n" + "".join(f"    {line}\n" for line in body.splitlines())
    uri = doc_uri(tmp_path, "yaml")
    yaml_ls.open(uri, text, "yaml")
    (d,) = yaml_ls.diagnostics(uri, some=True)
    assert d["range"]["start"]["line"] == line_of(text, bad.strip('"'))
    assert d["message"].startswith(f"A {kind} is a string")
    assert all(f'"{e}"' in d["message"] for e in examples) and "[0-9]" not in d["message"]


@pytest.mark.parametrize("kind, cell, bad, examples", BAD_QUANTITIES, ids=[q[0] for q in BAD_QUANTITIES])
def test_toml_bad_quantity_says_what_fits_not_the_regular_expression(taplo, tmp_path, kind, cell, bad, examples):
    """Taplo reads no `errorMessage` and prints a failed `pattern` as the regular expression; the
    schema makes a string that does not match fail a `const` whose text says what fits instead."""
    text = "[cells.c]\n" + cell.format(bad) + "\n"
    uri = doc_uri(tmp_path, "toml")
    taplo.open(uri, text, "toml")
    (d,) = taplo.diagnostics(uri, some=True)
    assert d["range"]["start"]["line"] == line_of(text, bad)
    assert d["message"].startswith(f'"a {kind} ') and d["message"].endswith('" was expected')
    assert all(f"`{e}`" in d["message"] for e in examples) and "[0-9]" not in d["message"]


def test_a_missing_key_is_reported_once_every_key_is_known(yaml_ls, taplo, tmp_path):
    """A misspelt `bandwidth` is not also reported missing; without the typo it is."""
    uri = doc_uri(tmp_path, "yaml")
    yaml_ls.open(uri, "cells:\n  up:\n    type: Bw\n    queue: Infinite\n", "yaml")
    (d,) = yaml_ls.diagnostics(uri, some=True)
    assert d["message"] == 'Missing property "bandwidth".'
    uri = doc_uri(tmp_path, "toml")
    taplo.open(uri, '[cells.up]\ntype = "Bw"\nqueue = "Infinite"\n', "toml")
    (d,) = taplo.diagnostics(uri, some=True)
    assert d["message"] == '"bandwidth" is a required property'


# ---- completion ---------------------------------------------------------------------------------
def test_yaml_completion_of_type_offers_every_upstream_type(yaml_ls, tmp_path):
    text = "cells:\n  c:\n    type: \n"
    uri = doc_uri(tmp_path, "yaml")
    yaml_ls.open(uri, text, "yaml")
    labels = set(yaml_ls.completion_labels(uri, *position_after(text, "type: ")))
    assert len(UPSTREAM_TYPES) == 11 and labels == set(_CELL_KEYS)  # the 11, and `Custom`


def test_toml_completion_of_type_offers_every_upstream_type(taplo, tmp_path):
    text = '[cells.c]\ntype = ""\n'
    uri = doc_uri(tmp_path, "toml")
    taplo.open(uri, text, "toml")
    labels = {label.strip('"') for label in taplo.completion_labels(uri, *position_after(text, 'type = "'))}
    assert labels == set(_CELL_KEYS)


@pytest.mark.parametrize("cell_type", sorted(UPSTREAM_TYPES))
def test_yaml_cell_is_offered_exactly_its_types_keys(yaml_ls, tmp_path, cell_type):
    text = f"cells:\n  c:\n    type: {cell_type}\n    \n"
    uri = doc_uri(tmp_path, "yaml")
    yaml_ls.open(uri, text, "yaml")
    labels = yaml_ls.completion_labels(uri, 3, 4)
    assert sorted(set(labels)) == sorted(_CELL_KEYS[cell_type])


def test_taplo_completes_a_cells_keys_by_path_so_a_typed_cell_gets_none_and_never_another_types(taplo, tmp_path):
    """Taplo (taplo-lsp 0.7 in @taplo/lsp 0.8) collects completions by key path only: it walks every
    `oneOf`/`anyOf`/`allOf` branch and never `if`/`then`, and never looks at a value
    (taplo-common's `collect_schemas`). `[cells.c]` is the same path whatever `type` says, so no
    schema can make it offer Bw's keys to a Bw cell and Delay's to a Delay cell: with a `oneOf` it
    offered every type's 22 keys. It offers `type` in a new cell, and nothing once `type` is written;
    `rattan lsp` (next test), which the VS Code extension starts for these files, offers the type's."""
    uri = doc_uri(tmp_path, "toml")
    taplo.open(uri, "[cells.c]\n\n", "toml")
    assert taplo.completion_labels(uri, 1, 0) == ["type"]
    for cell_type in sorted(UPSTREAM_TYPES):
        uri = doc_uri(tmp_path, "toml")
        taplo.open(uri, f'[cells.c]\ntype = "{cell_type}"\n\n', "toml")
        assert taplo.completion_labels(uri, 2, 0) == [], cell_type


@pytest.fixture(scope="module")
def rattan_ls():
    """`rattan lsp`, as the VS Code extension starts it for `*.rattan.toml` and `*.rattan.yaml` too."""
    server = StdioServer([sys.executable, "-m", "rattan", "lsp"], {})
    yield server
    server.close()


@pytest.mark.parametrize("suffix", ["toml", "yaml"])
def test_rattan_lsp_offers_a_cell_exactly_its_types_keys_in_toml_and_yaml(rattan_ls, tmp_path, suffix):
    for cell_type in sorted(UPSTREAM_TYPES):
        uri = doc_uri(tmp_path, suffix)
        text = (f'[cells.c]\ntype = "{cell_type}"\n\n' if suffix == "toml"
                else f"cells:\n  c:\n    type: {cell_type}\n    \n")
        rattan_ls.open(uri, text, suffix)
        line, column = (2, 0) if suffix == "toml" else (3, 4)
        assert sorted(rattan_ls.completion_labels(uri, line, column)) == sorted(_CELL_KEYS[cell_type]), cell_type


# ---- no false alarms ----------------------------------------------------------------------------
def test_the_examples_give_no_diagnostics(yaml_ls, taplo, tmp_path):
    for name, server, language in [("broadband.yaml", yaml_ls, "yaml"), ("broadband.toml", taplo, "toml")]:
        uri = (tmp_path / name.replace(".", ".rattan.")).as_uri()
        server.open(uri, (EXAMPLES / name).read_text(), language)
        assert server.diagnostics(uri, some=False) == [], name


def test_upstream_files_that_run_give_no_diagnostics_in_taplo(taplo, tmp_path):
    verdicts = tomllib.loads((CORPUS / "VERDICTS.toml").read_text())["files"]
    names = [n for n, v in verdicts.items() if v["verdict"] == "runs" and not v.get("ignored")]
    assert len(names) >= 8
    for name in names:
        uri = (tmp_path / name.replace(".toml", ".rattan.toml")).as_uri()
        taplo.open(uri, (CORPUS / name).read_text(), "toml")
        assert taplo.diagnostics(uri, some=False, quiet=1.0) == [], name


# ---- finding the schema from any folder ---------------------------------------------------------
def installed_schema_path() -> str:
    out = subprocess.run([sys.executable, "-m", "rattan", "schema", "--path"], check=True, cwd="/",
                         capture_output=True, text=True)
    return out.stdout.strip()


def test_a_yaml_modeline_with_the_installed_path_works_from_any_folder(tmp_path):
    server = StdioServer(yaml_server_command(), yaml_settings())
    try:
        uri = (tmp_path / "anywhere" / "path.yaml").as_uri()
        server.open(uri, f"# yaml-language-server: $schema={installed_schema_path()}\n" + YAML_TYPO, "yaml")
        (d,) = server.diagnostics(uri, some=True)
        assert d["message"].startswith("Unknown key. A Bw cell")
    finally:
        server.close()


def test_a_toml_schema_directive_with_the_installed_path_works_from_any_folder(tmp_path):
    server = StdioServer(taplo_server_command(), {"evenBetterToml": {"schema": {"enabled": True}}},
                         init_options={"configurationSection": "evenBetterToml"})
    try:
        uri = (tmp_path / "anywhere" / "path.toml").as_uri()
        server.open(uri, f"#:schema {installed_schema_path()}\n" + TOML_TYPO, "toml")
        (d,) = server.diagnostics(uri, some=True)
        assert "A Bw cell takes only" in d["message"]
    finally:
        server.close()


@pytest.fixture
def installed_extension(tmp_path, schema) -> Path:
    """The extension's files as they are laid out once installed (the schema copied in by packaging)."""
    ext = tmp_path / "extension"
    (ext / "schemas").mkdir(parents=True)
    (ext / "package.json").write_text((EXTENSION / "package.json").read_text())
    (ext / "schemas" / "document.schema.json").write_bytes(schema.read_bytes())
    return ext


def test_the_extensions_yaml_validation_gives_the_schema_by_file_name(installed_extension, tmp_path):
    """As the YAML extension does: `yamlValidation` rules, a `./` url resolved in the extension's folder,
    sent as json/schemaAssociations."""
    rules = json.loads((installed_extension / "package.json").read_text())["contributes"]["yamlValidation"]
    associations = [{"fileMatch": r["fileMatch"], "uri": (installed_extension / r["url"]).resolve().as_uri()}
                    for r in rules]
    server = StdioServer(yaml_server_command(), yaml_settings())
    try:
        server.notify("json/schemaAssociations", associations)
        for name, expected in [("rattan.yaml", 1), ("b.rattan.yml", 1), ("rattan.yaml.bak", 0), ("other.yaml", 0)]:
            uri = (tmp_path / "project" / name).as_uri()
            server.open(uri, YAML_TYPO, "yaml")
            assert len(server.diagnostics(uri, some=bool(expected))) == expected, name
    finally:
        server.close()


def test_the_extensions_toml_association_gives_the_schema_by_file_name(installed_extension, tmp_path):
    """As the extension sets Even Better TOML's `schema.associations` (src/associations.js), which
    Even Better TOML hands to Taplo as its settings."""
    script = ("const a = require(process.argv[1]); const fs = require('fs');"
              "console.log(JSON.stringify(a.tomlAssociations(process.argv[2],"
              " JSON.parse(fs.readFileSync(process.argv[2] + '/package.json')))))")
    out = subprocess.run([node_or_skip(), "-e", script, str(EXTENSION / "src" / "associations.js"),
                          str(installed_extension)], check=True, capture_output=True, text=True)
    associations = json.loads(out.stdout)
    assert set(associations.values()) == {(installed_extension / "schemas" / "document.schema.json").as_uri()}
    server = StdioServer(taplo_server_command(),
                         {"evenBetterToml": {"schema": {"enabled": True, "associations": associations}}},
                         init_options={"configurationSection": "evenBetterToml"})
    try:
        for name, expected in [("rattan.toml", 1), ("b.rattan.toml", 1), ("myrattan.toml", 0), ("other.toml", 0)]:
            uri = (tmp_path / "project" / name).as_uri()
            server.open(uri, TOML_TYPO, "toml")
            assert len(server.diagnostics(uri, some=bool(expected))) == expected, name
    finally:
        server.close()
