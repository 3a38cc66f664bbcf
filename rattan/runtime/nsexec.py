"""`python -m rattan.runtime.nsexec NETNS_PATH CMD [ARGS...]`: run CMD inside a network namespace.

A separate process rather than a fork hook, because the parent runs the engine thread: forking a
threaded process and calling into libraries before exec is not safe.
"""
from __future__ import annotations

import ctypes
import os
import sys

CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1


_libc = ctypes.CDLL(None, use_errno=True)


def setns_fd(fd: int, what: str) -> None:
    """Move the calling thread into the network namespace open as `fd`."""
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), what)


def enter(path: str) -> None:
    """Move this process (its only thread) into the network namespace at `path`."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns_fd(fd, path)
    finally:
        os.close(fd)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        sys.stderr.write("usage: python -m rattan.runtime.nsexec NETNS_PATH CMD [ARGS...]\n")
        return 2
    try:
        enter(argv[0])
        # If rattan dies (even by SIGKILL), so does the command; its own children are found and
        # stopped by the next start, through the namespace they are in.
        _libc.prctl(PR_SET_PDEATHSIG, 9)
        if os.getppid() == 1:
            return 1  # the parent is already gone
        os.execvp(argv[1], argv[1:])
    except OSError as e:
        sys.stderr.write(f"rattan: cannot run `{argv[1]}` in {argv[0]}: {e.strerror}\n")
        return 127
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
