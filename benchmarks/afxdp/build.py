"""Builds the two forwarders of the AF_XDP evaluation with the system C compiler (no library).

ring_fwd compiles rattan/engine/csrc/io.c in as it is, so it always measures the rings rattan ships;
xsk_fwd needs only the kernel's UAPI headers (linux/if_xdp.h, linux/bpf.h: Debian's
linux-libc-dev). `python benchmarks/afxdp/build.py DIR` builds into DIR and prints the paths.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.join(os.path.dirname(os.path.dirname(HERE)), "rattan", "engine", "csrc")
FORWARDERS = {"ring_fwd": ["-I", CSRC], "xsk_fwd": []}


class BuildError(Exception):
    """No C compiler, or a forwarder does not compile here (the message says which and why)."""


def compiler() -> str:
    """The system C compiler: $CC, else cc, gcc or clang."""
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    raise BuildError("no C compiler (cc, gcc or clang): apt-get install gcc")


def build(out_dir: str) -> dict[str, str]:
    """Compile every forwarder into `out_dir`: name -> path of the executable."""
    os.makedirs(out_dir, exist_ok=True)
    cc, paths = compiler(), {}
    for name, flags in FORWARDERS.items():
        exe = os.path.join(out_dir, name)
        argv = [cc, "-O2", "-g", "-Wall", "-Wextra", "-Werror", *flags, "-o", exe, os.path.join(HERE, f"{name}.c")]
        r = subprocess.run(argv, capture_output=True, text=True)
        if r.returncode != 0:
            raise BuildError(f"{name} does not compile: {' '.join(argv)}\n{r.stderr.strip()[-2000:]}")
        paths[name] = exe
    return paths


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: build.py OUT_DIR")
    for name, path in build(sys.argv[1]).items():
        print(f"{name}: {path}")
