"""`rattan new-cell` and `rattan include-dir`: a plugin distribution for a new C or Python cell.

The distribution is written from the jinja2 templates in templates/<lang>/ (package data). A C cell's
folder is compiled by the plugin's own setup.py at `pip install` into `<name>.so` next to its schema,
against the `rattan_engine.h` this rattan ships; the engine loads it on the cell's first use.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

LANGS = ("c", "python")
HEADER = "rattan_engine.h"
TEMPLATES = Path(__file__).resolve().parent / "templates"
# Lower case like the built-in types; also a C identifier (rt_cell_NAME) and a Python module name.
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")

# Where each template's output goes in the distribution, per language ({pkg}, {name} substituted). The
# package is under src/ so that tests run from the project's folder import the installed copy (which
# has the compiled library), not the sources.
FILES = {
    "c": {
        "pyproject.toml.j2": "pyproject.toml",
        "setup.py.j2": "setup.py",
        "gitignore.j2": ".gitignore",
        "README.md.j2": "README.md",
        "package_init.py.j2": "src/{pkg}/__init__.py",
        "cell.schema.json.j2": "src/{pkg}/{name}/cell.schema.json",
        "cell.c.j2": "src/{pkg}/{name}/{name}.c",
        "test_cell.py.j2": "tests/test_{name}.py",
    },
    "python": {
        "pyproject.toml.j2": "pyproject.toml",
        "README.md.j2": "README.md",
        "gitignore.j2": ".gitignore",
        "package_init.py.j2": "src/{pkg}/__init__.py",
        "cell.schema.json.j2": "src/{pkg}/{name}/cell.schema.json",
        "cell_init.py.j2": "src/{pkg}/{name}/__init__.py",
        "cell.py.j2": "src/{pkg}/{name}/cell.py",
        "test_cell.py.j2": "tests/test_{name}.py",
    },
}


class NewCellError(ValueError):
    """A name or folder `rattan new-cell` refuses, in words a user acts on."""


def include_dir() -> Path:
    """The folder holding the installed `rattan_engine.h` (for `cc -I`); the engine need not load."""
    folder = Path(__file__).resolve().parents[2] / "engine" / "csrc"
    if not (folder / HEADER).is_file():
        raise NewCellError(f"this rattan has no {HEADER} in {folder}: reinstall rattan")
    return folder


@dataclass(frozen=True)
class Names:
    """What a cell called `name` is called in each place of its distribution."""

    name: str
    lang: str

    @property
    def package(self) -> str:
        return f"rattan_{self.name}"

    @property
    def distribution(self) -> str:
        return "rattan-" + self.name.replace("_", "-")

    @property
    def class_name(self) -> str:
        return "".join(p.capitalize() for p in self.name.split("_") if p) + "Cell"


def check_name(name: str, registry=None) -> None:
    """NewCellError unless `name` can be a new cell type: lower-case identifier, not a word of the
    language, not a type, queue kind or record that is registered already."""
    if not _NAME.match(name):
        raise NewCellError(f"`{name}` cannot be a cell type name: use lower-case letters, digits and `_`, "
                           "starting with a letter (e.g. `my_policer`)")
    from ...compiler import compile_text
    if compile_text(f"let {name} = 1\n").diagnostics:  # the parser's own keywords, not a copy of them
        raise NewCellError(f"`{name}` is a word of the .rtn language; choose another name")
    if registry is None:
        from ...registry import default_registry
        registry = default_registry()
    ct = registry.get(name)
    if ct is not None:
        raise NewCellError(f"a cell type `{name}` exists already ({ct.origin}); choose another name")
    if name in registry.records():
        raise NewCellError(f"`{name}` is already a queue kind or record (`rattan cells {name}`); choose another name")


def render(name: str, lang: str) -> dict[str, str]:
    """The distribution's files (relative path -> text) for a cell `name` in `lang`."""
    import jinja2
    if lang not in LANGS:
        raise NewCellError(f"--lang must be one of {', '.join(LANGS)}, not `{lang}`")
    n = Names(name, lang)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES / lang)), keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined, autoescape=False)
    from ... import __version__
    values = {"name": name, "pkg": n.package, "dist": n.distribution, "cls": n.class_name,
              "rattan_version": __version__}
    return {out.format(pkg=n.package, name=name): env.get_template(tpl).render(**values)
            for tpl, out in FILES[lang].items()}


def new_cell(name: str, lang: str = "c", folder: str | Path | None = None, registry=None) -> Path:
    """Write the plugin distribution of a new cell into `folder` (default ./NAME), which must not
    exist; the folder written."""
    check_name(name, registry)
    dest = Path(folder if folder is not None else name)
    if dest.exists():
        raise NewCellError(f"{dest} exists already; new-cell writes a new folder and never overwrites one "
                           "(give another with --dir)")
    files = render(name, lang)
    for rel, text in files.items():
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return dest
