"""cffi build script (API mode): compiles the C engine into `rattan.engine._engine` at install time.

The cdef is read from the one public header, so the header stays the single
description of the engine's interface.
"""
import os
import re

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.join(HERE, "csrc")


def _cdef_from_header() -> str:
    text = open(os.path.join(CSRC, "rattan_engine.h"), encoding="utf-8").read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    out = []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith(("#include", "#ifndef", "#endif")) or s == "#define RATTAN_ENGINE_H":
            continue
        m = re.match(r"#define\s+(\w+)\s+(.+)", s)
        if m and not re.fullmatch(r"-?\d+", m.group(2).strip()):
            out.append(f"#define {m.group(1)} ...")  # a value cffi cannot parse: let the compiler fill it
            continue
        out.append(line)
    return "\n".join(out)


ffibuilder = FFI()
ffibuilder.cdef(_cdef_from_header())
ffibuilder.set_source(
    "rattan.engine._engine",
    '#include "rattan_engine.h"',
    sources=[os.path.relpath(os.path.join(CSRC, "engine.c"))],
    include_dirs=[os.path.relpath(CSRC)],
    extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra"] + os.environ.get("RATTAN_CFLAGS", "").split(),
    extra_link_args=os.environ.get("RATTAN_LDFLAGS", "").split(),
    libraries=["m"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
