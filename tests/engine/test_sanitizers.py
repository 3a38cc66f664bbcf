"""The engine under AddressSanitizer, UndefinedBehaviorSanitizer and ThreadSanitizer: a C stress harness, clean."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from rattan.engine import build
from tests.conftest import ROOT

HARNESS = ROOT / "tests" / "engine" / "c" / "engine_stress.c"


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc to build the sanitizer harness")
@pytest.mark.parametrize("sanitizer", ["address", "undefined", "thread"])
def test_engine_is_clean_under_sanitizer(tmp_path, sanitizer):
    exe = tmp_path / f"stress_{sanitizer}"
    table = tmp_path / "cells_table.c"
    table.write_text(build.builtin_table())
    flags = ["-O1", "-g", "-std=c11", "-pthread", "-Wall", "-Wextra", "-Werror", f"-fsanitize={sanitizer}",
             "-fno-omit-frame-pointer", "-fno-sanitize-recover=all"]
    includes = [f"-I{d}" for d in build.include_dirs()]
    r = subprocess.run(["gcc", *flags, *includes, str(HARNESS), str(table), *build.engine_sources(), "-lm",
                        "-o", str(exe)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-4000:]
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300,
                       env={"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1",
                            "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
                            "TSAN_OPTIONS": "halt_on_error=1"})
    assert r.returncode == 0, r.stderr[-4000:]
    assert "engine stress: clean" in r.stdout
