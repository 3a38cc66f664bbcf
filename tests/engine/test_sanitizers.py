"""The engine under AddressSanitizer, UndefinedBehaviorSanitizer and ThreadSanitizer: a C stress harness, clean."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from rattan.engine import build
from rattan.registry import default_registry
from tests.conftest import ROOT

HARNESS = ROOT / "tests" / "engine" / "c" / "engine_stress.c"


def _c_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _c_value(value, name: str | None, out: list[str]) -> str:
    """An rt_value initializer for a plan value; arrays it points to are appended to `out`."""
    head = f".name = {_c_string(name)}, " if name is not None else ""
    if isinstance(value, bool) or isinstance(value, int):
        return "{" + head + f".kind = RT_VAL_INT, .i = {int(value)}LL}}"
    if isinstance(value, float):
        return "{" + head + f".kind = RT_VAL_FLOAT, .f = {value!r}}}"
    if isinstance(value, str):
        return "{" + head + f".kind = RT_VAL_STR, .s = {_c_string(value)}, .len = {len(value.encode())}}}"
    if isinstance(value, dict):
        items = [_c_value(v, k, out) for k, v in value.items()]  # defined before what points to them
        label = f"v{len(out)}"
        out.append(f"static const rt_value {label}[] = {{{', '.join(items) or '{0}'}}};")
        return "{" + head + f".kind = RT_VAL_RECORD, .len = {len(items)}, .items = {label}}}"
    if value and all(isinstance(x, int) and not isinstance(x, bool) for x in value):
        label = f"v{len(out)}"
        out.append(f"static const int64_t {label}[] = {{{', '.join(f'{x}LL' for x in value)}}};")
        return "{" + head + f".kind = RT_VAL_INTS, .len = {len(value)}, .ints = {label}}}"
    if value and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value):
        label = f"v{len(out)}"
        out.append(f"static const double {label}[] = {{{', '.join(repr(float(x)) for x in value)}}};")
        return "{" + head + f".kind = RT_VAL_FLOATS, .len = {len(value)}, .floats = {label}}}"
    items = [_c_value(v, None, out) for v in value]
    label = f"v{len(out)}"
    out.append(f"static const rt_value {label}[] = {{{', '.join(items) or '{0}'}}};")
    return "{" + head + f".kind = RT_VAL_LIST, .len = {len(items)}, .items = {label}}}"


def stress_cases() -> str:
    """C source of the harness's cases: every single-output built-in cell's `x-engine-examples`, and
    every runtime parameter any schema names."""
    reg = default_registry()
    types, configs, arrays, params = [], [], [], set()
    for name in reg.names():
        ct = reg.get(name)
        if ct.origin != "builtin":
            continue
        examples = ct.schema.get("x-engine-examples")
        assert examples, f"cell `{name}` has no `x-engine-examples` in its schema: the stress test needs one"
        params.update(ct.runtime_params())
        for ex in examples:
            if ct.output_count(ex) != 1:
                continue  # the harness chains cells through port 0
            types.append(_c_string(name))
            configs.append(_c_value(ex, None, arrays))
    assert types
    return "\n".join(['#include "rattan_engine.h"', *arrays,
                      f"const char *const stress_types[] = {{{', '.join(types)}}};",
                      f"const rt_value stress_configs[] = {{{', '.join(configs)}}};",
                      f"const int stress_n_cases = {len(types)};",
                      f"const char *const stress_params[] = {{{', '.join(_c_string(p) for p in sorted(params))}}};",
                      f"const int stress_n_params = {len(params)};", ""])


def test_every_engine_example_is_accepted():
    """Each cell's `x-engine-examples` is a configuration its init accepts (the stress test's cases)."""
    from rattan.engine.binding import Engine
    reg = default_registry()
    for name in reg.names():
        ct = reg.get(name)
        if ct.origin == "builtin":
            for ex in ct.schema.get("x-engine-examples", ()):
                Engine(1).add_cell(name, ex, ct.output_count(ex))


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc to build the sanitizer harness")
@pytest.mark.parametrize("sanitizer", ["address", "undefined", "thread"])
def test_engine_is_clean_under_sanitizer(tmp_path, sanitizer):
    exe = tmp_path / f"stress_{sanitizer}"
    table = tmp_path / "cells_table.c"
    table.write_text(build.builtin_table())
    cases = tmp_path / "stress_cases.c"
    cases.write_text(stress_cases())
    flags = ["-O1", "-g", "-std=c11", "-pthread", "-Wall", "-Wextra", "-Werror", f"-fsanitize={sanitizer}",
             "-fno-omit-frame-pointer", "-fno-sanitize-recover=all"]
    includes = [f"-I{d}" for d in build.include_dirs()]
    r = subprocess.run(["gcc", *flags, *includes, str(HARNESS), str(table), str(cases), *build.engine_sources(), "-lm", "-ldl",
                        "-o", str(exe)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-4000:]
    # ThreadSanitizer took 114 s on a lightly loaded 2-core machine and over 300 s with four other
    # suites and a CPU hog on it (3 engine threads on 2 cores); a hang shows as the last round printed
    try:
        r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=900,
                           env={"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1",
                                "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
                                "TSAN_OPTIONS": "halt_on_error=1"})
    except subprocess.TimeoutExpired as e:
        err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        pytest.fail(f"the stress harness did not finish in 900 s; it got to: {err.strip().splitlines()[-1:]}")
    assert r.returncode == 0, r.stderr[-4000:]
    assert "engine stress: clean" in r.stdout
