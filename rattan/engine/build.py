"""cffi build script (API mode): compiles the C engine into `rattan.engine._engine` at install time.

The cdef is read from part 1 of the one public header, so the header stays the
single description of the engine's interface. The cells are every
`stdlib_cells/<type>/*.c`; the table of built-in cells is generated from the
`const rt_cell_ops rt_cell_<type>` each one defines, so a new cell folder needs
no edit here.
"""
import glob
import os
import re

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.join(HERE, "csrc")
ROOT = os.path.dirname(os.path.dirname(HERE))
CELLS = os.path.join(ROOT, "stdlib_cells")
_OPS = re.compile(r"^const rt_cell_ops (rt_cell_\w+)\s*=", re.M)


def engine_sources() -> list[str]:
    """Every C file of the engine core and of the built-in cells."""
    return sorted(glob.glob(os.path.join(CSRC, "*.c"))) + sorted(glob.glob(os.path.join(CELLS, "*", "*.c")))


def include_dirs() -> list[str]:
    return [CSRC, CELLS]


def builtin_table() -> str:
    """C source of `rt_builtin_cells`: the ops table of every cell in stdlib_cells."""
    names = []
    for path in engine_sources():
        if path.startswith(CELLS):
            names += _OPS.findall(open(path, encoding="utf-8").read())
    lines = ['#define RT_CELL_API', '#include "rattan_engine.h"']
    lines += [f"extern const rt_cell_ops {n};" for n in names]
    lines.append("const rt_cell_ops *const rt_builtin_cells[] = {" + "".join(f"&{n}, " for n in names) + "0};")
    return "\n".join(lines) + "\n"


def _x_tables(text: str) -> dict[str, list[str]]:
    """X-macro tables of the header (`#define NAME(X) X(CONST, ...) ...`): their constants, in order."""
    tables = {}
    for m in re.finditer(r"#define\s+(\w+)\(X\)((?:.*\\\n)*.*)", text):
        tables[m.group(1)] = re.findall(r"X\((\w+),", m.group(2))
    return tables


def _cdef_from_header() -> str:
    text = open(os.path.join(CSRC, "rattan_engine.h"), encoding="utf-8").read()
    text = text.split("#ifdef RT_CELL_API", 1)[0]  # part 2, the cell interface, is C only
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    tables = _x_tables(text)
    text = re.sub(r"\\\n", " ", text)  # one line per macro
    out = []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith(("#include", "#ifndef", "#endif", "#undef")) or s == "#define RATTAN_ENGINE_H":
            continue
        if re.match(r"#define\s+\w+\(", s):  # function-like macros: cffi has no use for them
            continue
        m = re.match(r"enum\s*\{\s*(\w+)\(\w+\)\s*(\w+)\s*\};", s)
        if m:  # an enum spelled through an X-macro table: spell it out
            out.append("enum { " + ", ".join(tables[m.group(1)] + [m.group(2)]) + " };")
            continue
        m = re.match(r"#define\s+(\w+)\s+(.+)", s)
        if m and not re.fullmatch(r"-?\d+", m.group(2).strip()):
            out.append(f"#define {m.group(1)} ...")  # a value cffi cannot parse: let the compiler fill it
            continue
        out.append(line)
    return "\n".join(out)


def _rel(path: str) -> str:
    return os.path.relpath(path)  # setuptools wants relative paths from the project root


ffibuilder = FFI()
ffibuilder.cdef(_cdef_from_header())
ffibuilder.set_source(
    "rattan.engine._engine",
    builtin_table(),
    sources=[_rel(p) for p in engine_sources()],
    include_dirs=[_rel(p) for p in include_dirs()],
    extra_compile_args=["-O2", "-std=c11", "-pthread", "-Wall", "-Wextra"] + os.environ.get("RATTAN_CFLAGS", "").split(),
    extra_link_args=["-pthread"] + os.environ.get("RATTAN_LDFLAGS", "").split(),
    libraries=["m", "dl"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
