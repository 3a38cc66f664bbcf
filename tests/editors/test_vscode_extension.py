"""editors/vscode: the manifest, the grammar (generated from the cell registry, checked by
vscode-tmgrammar-test on annotated samples), the snippets (they expand to files `rattan check`
accepts), the language configuration, the .vsix `vsce package` builds, and the extension's
JavaScript (Node tests with a stand-in `vscode` module), run from the package too.

VS Code's own extension test runner (@vscode/test-electron) downloads a VS Code build at run
time, which cannot be reached here, so the extension is tested without VS Code.

The npm parts need node and `npm ci --prefix editors/vscode` (.ci/run does both)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from rattan.registry.registry import Registry
from tests.conftest import ROOT

EXTENSION = ROOT / "editors" / "vscode"
MANIFEST = json.loads((EXTENSION / "package.json").read_text())
GRAMMAR_FILE = EXTENSION / "syntaxes" / "rattan.tmLanguage.json"
BIN = EXTENSION / "node_modules" / ".bin"


def npm_tool(name: str) -> str:
    if shutil.which("node") is None:
        pytest.skip("node is not installed (.ci/run installs it with the npm tools)")
    tool = BIN / name
    if not tool.exists():
        pytest.skip(f"{name} is not installed: npm ci --prefix editors/vscode")
    return str(tool)


def builtins() -> Registry:
    reg = Registry()
    reg.load_builtins()
    return reg


# ---- the manifest -------------------------------------------------------------------------------
def test_manifest_maps_rtn_files_to_the_rattan_language_and_its_files_exist():
    (lang,) = MANIFEST["contributes"]["languages"]
    assert lang["id"] == "rattan" and lang["extensions"] == [".rtn"]
    (grammar,) = MANIFEST["contributes"]["grammars"]
    assert grammar["language"] == "rattan"
    assert json.loads(GRAMMAR_FILE.read_text())["scopeName"] == grammar["scopeName"] == "source.rattan"
    for rel in [lang["configuration"], grammar["path"], MANIFEST["contributes"]["snippets"][0]["path"],
                MANIFEST["main"]]:
        assert (EXTENSION / rel).is_file(), rel
    assert "onLanguage:rattan" in MANIFEST["activationEvents"]


def test_manifest_has_the_server_path_setting_and_the_schema_contributions():
    props = MANIFEST["contributes"]["configuration"]["properties"]
    assert props["rattan.server.path"]["default"] == "rattan"
    (yaml_rule,) = MANIFEST["contributes"]["yamlValidation"]
    assert yaml_rule["url"] == "./schemas/document.schema.json"
    assert {"*.rattan.yaml", "rattan.yaml"} <= set(yaml_rule["fileMatch"])
    (toml_rule,) = MANIFEST["contributes"]["tomlValidation"]
    # the same URL as the schema's $id: Even Better TOML takes absolute URLs only
    schema = json.loads((ROOT / "schemas" / "document.schema.json").read_text())
    assert toml_rule["url"] == schema["$id"] and {"*.rattan.toml", "rattan.toml"} <= set(toml_rule["fileMatch"])


# ---- the grammar --------------------------------------------------------------------------------
def test_grammar_file_is_what_the_generator_writes_from_the_registry():
    result = subprocess.run([sys.executable, str(EXTENSION / "scripts" / "build_grammar.py"), "--check"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_grammar_cell_types_are_the_registrys_builtins():
    repo = json.loads(GRAMMAR_FILE.read_text())["repository"]
    (names,) = re.findall(r"\\b\(\?:([^)]*)\)\\b", repo["cell-types"]["match"])
    assert sorted(names.split("|")) == builtins().names()
    (records,) = re.findall(r"\\b\(\?:([^)]*)\)\\b", repo["records"]["match"])
    assert sorted(records.split("|")) == sorted(builtins().records())


def test_grammar_samples_pass_vscode_tmgrammar_test():
    tool = npm_tool("vscode-tmgrammar-test")
    result = subprocess.run([tool, "-g", "syntaxes/rattan.tmLanguage.json", "test/*.test.rtn"],
                            capture_output=True, text=True, cwd=EXTENSION, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "run successfuly" in result.stdout  # (sic) its own spelling


def test_a_wrong_scope_in_a_sample_fails_vscode_tmgrammar_test(tmp_path):
    """The samples' assertions are checked: a sample that claims a wrong scope fails."""
    tool = npm_tool("vscode-tmgrammar-test")
    sample = tmp_path / "wrong.test.rtn"
    sample.write_text('# SYNTAX TEST "source.rattan"\nlet rtt = 60ms\n#         ^^^^ string.quoted.double.rattan\n')
    result = subprocess.run([tool, "-g", str(GRAMMAR_FILE), str(sample)], capture_output=True, text=True,
                            cwd=EXTENSION, timeout=120)
    assert result.returncode != 0 and "missing required scopes: string.quoted.double.rattan" in result.stdout


# ---- the snippets -------------------------------------------------------------------------------
SNIPPETS = json.loads((EXTENSION / "snippets" / "rattan.json").read_text())


def expand(body: list[str]) -> str:
    """A snippet as inserted when every placeholder keeps its default (tabs as 4 spaces)."""
    text = "\n".join(body).replace("\t", "    ")
    values: dict[str, str] = {}

    def placeholder(m: re.Match) -> str:
        values[m.group(1)] = m.group(2)
        return m.group(2)
    text = re.sub(r"\$\{(\d+):([^}]*)\}", placeholder, text)
    return re.sub(r"\$(\d+)", lambda m: values.get(m.group(1), ""), text)


def check(tmp_path: Path, text: str) -> subprocess.CompletedProcess:
    path = tmp_path / "snippet.rtn"
    path.write_text(text)
    return subprocess.run([sys.executable, "-m", "rattan", "check", str(path)], capture_output=True, text=True)


def test_channel_snippet_is_a_file_rattan_checks(tmp_path):
    result = check(tmp_path, expand(SNIPPETS["channel"]["body"]))
    assert result.returncode == 0, result.stdout + result.stderr


def test_compound_cell_type_snippet_is_used_by_a_channel_rattan_checks(tmp_path):
    text = expand(SNIPPETS["compound cell type"]["body"]) + (
        "channel c {\n    cell up: link { rate = 10Mbps }\n    left -> up -> right\n    right -> pass { } -> left\n}\n")
    result = check(tmp_path, text)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["timeline at", "timeline every"])
def test_timeline_snippets_check_inside_a_channel(tmp_path, name):
    text = ("channel c {\n    cell up: bw { rate = 20Mbps }\n    left -> up -> right\n    right -> pass { } -> left\n    "
            + expand(SNIPPETS[name]["body"]) + "\n}\n")
    result = check(tmp_path, text)
    assert result.returncode == 0, result.stdout + result.stderr


# ---- the language configuration -----------------------------------------------------------------
CONFIG = json.loads((EXTENSION / "language-configuration.json").read_text())


def test_language_configuration_comments_and_pairs():
    assert CONFIG["comments"] == {"lineComment": "#"}
    assert [p["open"] + p["close"] for p in CONFIG["autoClosingPairs"]] == ["{}", "[]", "()", '""']
    assert CONFIG["brackets"] == [["{", "}"], ["[", "]"], ["(", ")"]]


@pytest.mark.parametrize("line, more", [
    ("channel c {", True), ("    cell r: router {", True), ("    routes = [", True), ("cell type link(", True),
    ("channel c {  # the path", True), ('    cell s: spy { path = "{" }', False), ("# channel c {", False),
    ("    left -> up -> right", False), ('    let p = "x {"', False),
])
def test_indentation_increases_after_an_opening_bracket_only_in_code(line, more):
    # VS Code runs these as JavaScript regular expressions; these patterns mean the same in Python
    assert bool(re.search(CONFIG["indentationRules"]["increaseIndentPattern"], line)) is more


@pytest.mark.parametrize("line, less", [("}", True), ("    }", True), ("    ]", True), (")", True),
                                        ("    left -> up", False), ("    cell up: bw { rate = 1Mbps }", False)])
def test_indentation_decreases_on_a_closing_bracket(line, less):
    assert bool(re.search(CONFIG["indentationRules"]["decreaseIndentPattern"], line)) is less


# ---- the package --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vsix(tmp_path_factory) -> Path:
    """`vsce package`, as CI builds the .vsix."""
    tool = npm_tool("vsce")
    out = tmp_path_factory.mktemp("vsix") / "rattan.vsix"
    result = subprocess.run([tool, "package", "--skip-license", "--allow-missing-repository", "-o", str(out)],
                            capture_output=True, text=True, cwd=EXTENSION, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_vsix_holds_what_the_manifest_names_and_the_shipped_schema(vsix):
    with zipfile.ZipFile(vsix) as z:
        names = set(z.namelist())
        packaged = json.loads(z.read("extension/package.json"))
        schema = z.read("extension/schemas/document.schema.json")
    contributes = packaged["contributes"]
    for rel in [packaged["main"], contributes["languages"][0]["configuration"], contributes["grammars"][0]["path"],
                contributes["snippets"][0]["path"], contributes["yamlValidation"][0]["url"]]:
        assert "extension/" + rel.removeprefix("./") in names, rel
    assert "extension/node_modules/vscode-languageclient/package.json" in names
    assert not [n for n in names if n.startswith(("extension/test/", "extension/scripts/"))]
    assert schema == (ROOT / "schemas" / "document.schema.json").read_bytes()


def test_extension_javascript_passes_its_node_tests_from_the_source_tree():
    npm_tool("vsce")  # node and the installed node_modules
    result = subprocess.run(["node", "--test", "test/"], capture_output=True, text=True, cwd=EXTENSION, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^# pass [1-9]", result.stdout, re.M) and re.search(r"^# fail 0$", result.stdout, re.M)


def test_extension_javascript_passes_its_node_tests_from_the_vsix(vsix, tmp_path):
    """The packaged extension loads with only what the .vsix holds (its node_modules included)."""
    with zipfile.ZipFile(vsix) as z:
        z.extractall(tmp_path)
    result = subprocess.run(["node", "--test", str(EXTENSION / "test")], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120, env={**os.environ, "EXTENSION_DIR": str(tmp_path / "extension")})
    assert result.returncode == 0, result.stdout + result.stderr
