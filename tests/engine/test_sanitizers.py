"""The engine under AddressSanitizer and UndefinedBehaviorSanitizer: a C stress harness, clean."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import ROOT

CSRC = ROOT / "rattan" / "engine" / "csrc"
HARNESS = ROOT / "tests" / "engine" / "c" / "engine_stress.c"


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc to build the sanitizer harness")
@pytest.mark.parametrize("sanitizer", ["address", "undefined"])
def test_engine_is_clean_under_sanitizer(tmp_path, sanitizer):
    exe = tmp_path / f"stress_{sanitizer}"
    flags = ["-O1", "-g", "-std=c11", "-Wall", "-Wextra", "-Werror", f"-fsanitize={sanitizer}",
             "-fno-omit-frame-pointer", "-fno-sanitize-recover=all"]
    subprocess.run(["gcc", *flags, f"-I{CSRC}", str(HARNESS), str(CSRC / "engine.c"), "-lm", "-o", str(exe)],
                   check=True, capture_output=True, text=True)
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300,
                       env={"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1",
                            "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"})
    assert r.returncode == 0, r.stderr[-4000:]
    assert "engine stress: clean" in r.stdout
