"""The language server in upstream Rattan's TOML and YAML documents: keys and values from the
document schema (`rattan schema`), not `.rtn` keywords.

Where the cursor is, as a path of keys (`cells`, `up`), is read from the TOML table headers or
the YAML indentation before it; the schema is walked along that path, through `$ref`s, `oneOf`
branches (the one whose `type` matches the keys already written, else all) and `if`/`then`
conditions, to the object whose keys fit there.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from typing import Any, Mapping

from lsprotocol import types as lsp

_KEY = r"[A-Za-z0-9_-]+"


@lru_cache(maxsize=1)
def document_schema() -> Mapping[str, Any]:
    """The schema `rattan schema` writes (empty if the package lacks it)."""
    try:
        return json.loads(resources.files("rattan.schemas").joinpath("document.schema.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}


def _deref(root: Mapping[str, Any], s: Any, depth: int = 0) -> Mapping[str, Any]:
    while isinstance(s, Mapping) and "$ref" in s and depth < 32:
        ref = s["$ref"]
        target: Any = root
        if not ref.startswith("#/"):
            return {k: v for k, v in s.items() if k != "$ref"}
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, Mapping) else {}
        # keys beside a $ref (a description) override the target's
        s = {**target, **{k: v for k, v in s.items() if k != "$ref"}}
        depth += 1
    return s if isinstance(s, Mapping) else {}


def _matches(cond: Mapping[str, Any], values: Mapping[str, str]) -> bool:
    """Whether an `if` holds for the keys written so far (unknown keys: it does not)."""
    for k in cond.get("required", ()):
        if k not in values:
            return False
    for k, c in (cond.get("properties") or {}).items():
        if k not in values:
            if k in cond.get("required", ()):
                return False
            continue
        v = values[k]
        if "const" in c and str(c["const"]) != v:
            return False
        if "enum" in c and v not in [str(x) for x in c["enum"]]:
            return False
    return True


def _branch_fits(root, branch: Mapping[str, Any], values: Mapping[str, str]) -> bool:
    b = _deref(root, branch)
    for k, c in (b.get("properties") or {}).items():
        c = _deref(root, c)
        if k in values and "const" in c and str(c["const"]) != values[k]:
            return False
        if k in values and "enum" in c and values[k] not in [str(x) for x in c["enum"]]:
            return False
    return True


def properties(root, s: Any, values: Mapping[str, str] | None = None, depth: int = 0) -> dict[str, list]:
    """Every key an object schema admits: key -> the schemas that describe it (one per branch)."""
    s = _deref(root, s)
    values = values or {}
    out: dict[str, list] = {}
    if depth > 16:
        return out
    for k, v in (s.get("properties") or {}).items():
        out.setdefault(k, []).append(v)
    for sub in s.get("allOf", ()):
        for k, v in properties(root, sub, values, depth + 1).items():
            out.setdefault(k, []).extend(v)
    for key in ("oneOf", "anyOf"):
        branches = s.get(key, ())
        fitting = [b for b in branches if _branch_fits(root, b, values)] or list(branches)
        for b in fitting:
            for k, v in properties(root, b, values, depth + 1).items():
                out.setdefault(k, []).extend(v)
    if "if" in s:
        chosen = s.get("then") if _matches(_deref(root, s["if"]), values) else s.get("else")
        if chosen:
            for k, v in properties(root, chosen, values, depth + 1).items():
                out.setdefault(k, []).extend(v)
    return out


def child(root, s: Any, key: str) -> Any:
    """The schema of `key` inside object schema `s` (several branches: the first that names it)."""
    props = properties(root, s)
    if key in props:
        return props[key][0]
    s = _deref(root, s)
    for pat, v in (s.get("patternProperties") or {}).items():
        if re.search(pat, key):
            return v
    extra = s.get("additionalProperties")
    return extra if isinstance(extra, Mapping) else {}


def at_path(root, path: list[str]) -> Any:
    s: Any = root
    for key in path:
        s = child(root, s, key)
    return s


def _doc(root, s: Any) -> str:
    s = _deref(root, s)
    return s.get("markdownDescription") or s.get("description") or ""


def _values(root, schemas: list) -> list[str]:
    out: list[str] = []
    for s in schemas:
        s = _deref(root, s)
        cands = ([s["const"]] if "const" in s else []) + list(s.get("enum", ()))
        for sub in list(s.get("oneOf", ())) + list(s.get("anyOf", ())):
            sub = _deref(root, sub)
            cands += ([sub["const"]] if "const" in sub else []) + list(sub.get("enum", ()))
        if s.get("type") == "boolean":
            cands += [True, False]
        for c in cands:
            text = json.dumps(c) if isinstance(c, bool) else str(c)
            if text not in out:
                out.append(text)
    return out


def _examples(root, schemas: list) -> list[str]:
    """A quantity's `examples` (`20Mbps`, `1.5s`): offered as values, not listed as its only ones."""
    out: list[str] = []
    for s in schemas:
        for e in _deref(root, s).get("examples", ()):
            if isinstance(e, str) and e not in out:
                out.append(e)
    return out


# ---------------------------------------------------------------- where the cursor is
def _toml_place(lines: list[str], line: int) -> tuple[list[str], int, int]:
    """The table the cursor's line belongs to (its header's keys), and the lines of that table."""
    path: list[str] = []
    start = 0
    for i in range(line, -1, -1):
        m = re.match(r"\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$", lines[i])
        if m and i < line:
            path = [p.strip().strip("\"'") for p in re.split(r"\.(?=(?:[^\"']*[\"'][^\"']*[\"'])*[^\"']*$)", m.group(1))]
            start = i + 1
            break
    end = next((i for i in range(line + 1, len(lines)) if re.match(r"\s*\[", lines[i])), len(lines))
    return path, start, end


def _yaml_place(lines: list[str], line: int, indent: int) -> tuple[list[str], int, int]:
    """The mapping the cursor's line belongs to (its parents' keys, by indentation), and its lines."""
    path: list[str] = []
    want = indent
    start = 0
    for i in range(line - 1, -1, -1):
        text = lines[i]
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        ind = len(text) - len(text.lstrip(" "))
        if ind < want:
            m = re.match(rf"\s*[\"']?({_KEY})[\"']?\s*:", text)
            if m:
                path.insert(0, m.group(1))
                if not path[1:]:
                    start = i + 1
            want = ind
            if ind == 0:
                break
    if not path:
        start = 0
    end = len(lines)
    for i in range(line + 1, len(lines)):
        text = lines[i]
        if text.strip() and not text.lstrip().startswith("#") and len(text) - len(text.lstrip(" ")) < indent:
            end = i
            break
    return path, start, end


def _written(lines: list[str], start: int, end: int, yaml: bool, indent: int, skip: int) -> dict[str, str]:
    """Keys already written in the cursor's table or mapping (at its own indentation), with values."""
    out = {}
    sep = ":" if yaml else "="
    for i in range(start, end):
        if i == skip:
            continue
        text = lines[i]
        if yaml and len(text) - len(text.lstrip(" ")) != indent:
            continue
        m = re.match(rf"\s*[\"']?({_KEY})[\"']?\s*{sep}\s*(.*?)\s*(#.*)?$", text)
        if m:
            out[m.group(1)] = m.group(2).strip("\"'")
    return out


def _place(text: str, pos: lsp.Position, yaml: bool):
    lines = text.split("\n")
    if pos.line >= len(lines):
        return None
    line = lines[pos.line].rstrip("\r")
    before = line[:pos.character]
    indent = len(line) - len(line.lstrip(" ")) if line.strip() else len(before) - len(before.lstrip(" "))
    if yaml:
        path, start, end = _yaml_place(lines, pos.line, indent)
    else:
        path, start, end = _toml_place(lines, pos.line)
    return lines, line, before, indent, path, start, end


def completion(text: str, pos: lsp.Position, yaml: bool) -> list[lsp.CompletionItem]:
    """Keys that fit the cursor's table or mapping, or the values of the key before the cursor."""
    root = document_schema()
    place = _place(text, pos, yaml)
    if not root or place is None:
        return []
    lines, line, before, indent, path, start, end = place
    if "#" in before:
        return []
    sep = ":" if yaml else "="
    if not yaml and re.match(r"\s*\[", before):  # a table header: the tables that may follow
        parts = [p for p in re.sub(r"^\s*\[+", "", before).split(".")]
        obj = at_path(root, [p.strip().strip("\"'") for p in parts[:-1]])
        return [_key_item(root, k, v, "") for k, v in properties(root, obj).items()]
    written = _written(lines, start, end, yaml, indent, pos.line)
    obj = at_path(root, path)
    props = properties(root, obj, written)
    m = re.match(rf"\s*[\"']?({_KEY})[\"']?\s*{sep}\s*[\"']?[^\"']*$", before)
    if m:  # a value
        key = m.group(1)
        quote = '"' if not yaml and not re.search(rf"{sep}\s*[\"']", before) else ""
        out = []
        for v in _values(root, props.get(key, [])) + _examples(root, props.get(key, [])):
            plain = v in ("true", "false")
            out.append(lsp.CompletionItem(label=v, kind=lsp.CompletionItemKind.EnumMember,
                                          insert_text=v if plain else f"{quote}{v}{quote}"))
        return out
    if re.fullmatch(rf"\s*[\"']?{_KEY}?", before) or before.strip() == "":
        return [_key_item(root, k, v, f"{k}{sep} " if yaml else f"{k} = ")
                for k, v in props.items() if k not in written]
    return []


def _key_item(root, key: str, schemas: list, insert: str) -> lsp.CompletionItem:
    s = _deref(root, schemas[0]) if schemas else {}
    examples = _examples(root, schemas[:1])
    t = (s.get("type") or ("one of " + ", ".join(_values(root, schemas)[:6]) if _values(root, schemas) else "")
         or ("such as " + ", ".join(examples[:2]) if examples else ""))
    doc = _doc(root, schemas[0]) if schemas else ""
    return lsp.CompletionItem(label=key, kind=lsp.CompletionItemKind.Property, detail=str(t) or None,
                              documentation=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=doc) if doc else None,
                              insert_text=insert or key)


def hover(text: str, pos: lsp.Position, yaml: bool) -> lsp.Hover | None:
    """The schema's description of the key under the cursor."""
    root = document_schema()
    place = _place(text, pos, yaml)
    if not root or place is None:
        return None
    lines, line, before, indent, path, start, end = place
    sep = ":" if yaml else "="
    m = re.match(rf"(\s*[\"']?)({_KEY})[\"']?\s*{sep}", line)
    if not m or not (m.start(2) <= pos.character <= m.end(2)):
        return None
    key = m.group(2)
    written = _written(lines, start, end, yaml, indent, -1)
    schemas = properties(root, at_path(root, path), written).get(key)
    if not schemas:
        return None
    doc = _doc(root, schemas[0])
    values = _values(root, schemas)
    value = "\n\n".join(x for x in (f"`{'.'.join(path + [key])}`", doc,
                                    ("one of " + ", ".join(f"`{v}`" for v in values)) if values else "") if x)
    rng = lsp.Range(start=lsp.Position(line=pos.line, character=m.start(2)),
                    end=lsp.Position(line=pos.line, character=m.end(2)))
    return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=value), range=rng)
