"""`python -m rattan.runtime.nsexec [--linger] [--ctrl-c-fd FD] [--cpus LIST] NETNS_PATH CMD [ARGS...]`:
run CMD inside a network namespace, in a PID namespace of its own that dies with rattan.

A separate process rather than a fork hook, because the parent runs the engine thread: forking a
threaded process and calling into libraries before exec is not safe.

Three processes, each tied to the one before by PR_SET_PDEATHSIG (SIGKILL), so that a SIGKILL of
rattan takes everything its commands started with it, however deep (the kernel kills every process
of a PID namespace when its init dies):

    rattan -> this process (outside) -> init (PID 1 of the new PID namespace) -> CMD -> ...

The outside process stays so that rattan's child is still the command to rattan: it passes signals
on, and exits as CMD did (with its status, or by its signal). The init reaps orphans, and when CMD
ends it asks what CMD left behind to stop (SIGTERM), gives it GRACE_S, and exits: the kernel kills
the rest. With `--linger` (the right endpoint's command, which may start a daemon and exit) it
waits instead until nothing else runs in the namespace or it is told to stop.

With `--status-fd FD`, the init writes CMD's wait status on FD as soon as CMD ends, lingering or
not: rattan waits for an upstream Isolated-mode `right` command itself, not for what it left running.

The PID namespace gets a /proc of its own, in a mount namespace of its own (a slave of the host's, as
`ip netns exec` makes: mounts made outside still appear inside, none made inside leaks out), so that
`$$`, /proc/$$ and `ps` agree inside.

With `--cpus LIST` ("1", "0,2-3"), CMD and everything it starts run on those CPUs only (the affinity
is set here, before the init is forked, and inherited): `rattan run --app-cpus` keeps the
applications off the engine's core.
"""
from __future__ import annotations

import ctypes
import os
import select
import signal
import sys
import time

CLONE_NEWNET = 0x40000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNS = 0x00020000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_SLAVE = 2, 4, 8, 16384, 1 << 19
PR_SET_PDEATHSIG = 1
GRACE_S = 1.0  # what CMD left behind gets this long after a SIGTERM, as netns.stop_inside gives
# Passed on to CMD. SIGINT is not: a terminal's Ctrl-C reaches CMD (same process group) directly.
FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)

_libc = ctypes.CDLL(None, use_errno=True)


def _fail(what: str) -> OSError:
    err = ctypes.get_errno()
    return OSError(err, os.strerror(err), what)


def setns_fd(fd: int, what: str) -> None:
    """Move the calling thread into the network namespace open as `fd`."""
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        raise _fail(what)


def enter(path: str) -> None:
    """Move this process (its only thread) into the network namespace at `path`."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns_fd(fd, path)
    finally:
        os.close(fd)


def _die_with_parent() -> None:
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _reap_for(seconds: float) -> None:
    """Reap children until none is left or `seconds` have passed."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() >= deadline:
                return
            time.sleep(0.01)


def _init(argv: list[str], linger: bool, report: int, lifeline: int, sigint, status_fd: int | None = None) -> None:
    """PID 1 of the command's PID namespace: start CMD, reap, report CMD's wait status; never returns.
    `status_fd`: where CMD's wait status is written as soon as CMD ends (with `linger`, what it
    started may still run)."""
    _die_with_parent()
    if select.select([lifeline], [], [], 0)[0]:  # EOF: the outside process died before prctl
        os._exit(1)
    if _libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None) != 0:
        sys.stderr.write(f"rattan: warning: no /proc of the command's own: {_fail('mount /proc')}\n")
    cmd: list[int] = []
    stopping: list[int] = []

    def forward(signum, frame):
        if signum == signal.SIGTERM:  # stop: CMD and whatever it started
            stopping.append(signum)
            try:
                os.kill(-1, signum)
            except ProcessLookupError:
                pass
        elif cmd:
            try:
                os.kill(cmd[0], signum)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for s in FORWARDED:
        signal.signal(s, forward)
    pid = os.fork()
    if pid == 0:
        # Python ignores SIGPIPE and SIGXFSZ, and an ignored signal stays ignored across exec: CMD
        # gets the defaults (as subprocess's restore_signals gives), so `yes | head` ends quietly
        for s in (*FORWARDED, signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(s, signal.SIG_DFL)
        signal.signal(signal.SIGINT, sigint)  # as rattan had it: ignored under `nohup` or `&`
        if status_fd is not None:
            os.close(status_fd)
        try:
            os.execvp(argv[0], argv)
        except OSError as e:
            sys.stderr.write(f"rattan: cannot run `{argv[0]}`: {e.strerror}\n")
            sys.stderr.flush()
        os._exit(127)
    cmd.append(pid)
    if stopping:
        os.kill(pid, signal.SIGTERM)
    status = None
    while True:
        try:
            child, st = os.wait()
        except ChildProcessError:
            break
        if child == pid:
            status = st
            if status_fd is not None:
                try:
                    os.write(status_fd, str(st).encode())
                    os.close(status_fd)
                except OSError:
                    pass
                status_fd = None
            if not linger:
                break
    try:
        os.kill(-1, signal.SIGTERM)  # what CMD left running
        _reap_for(GRACE_S)
    except ProcessLookupError:
        pass
    os.write(report, str(status).encode())
    os._exit(0)  # the kernel now kills whatever is left in the namespace


def _exit_as(status: int) -> int:
    """Exit as a process with this wait status did: its exit code, or killed by its signal."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
        os.kill(os.getpid(), sig)
        return 128 + sig  # a signal whose default is not to end a process
    return os.waitstatus_to_exitcode(status)


def main(argv: list[str]) -> int:
    linger, ctrl_c_fd, status_fd, cpus = False, None, None, None
    while argv and argv[0].startswith("--"):
        if argv[0] == "--cpus" and len(argv) > 1:
            cpus, argv = argv[1], argv[2:]
        elif argv[0] == "--linger":
            linger, argv = True, argv[1:]
        elif argv[0] == "--ctrl-c-fd" and len(argv) > 1:
            ctrl_c_fd, argv = int(argv[1]), argv[2:]
        elif argv[0] == "--status-fd" and len(argv) > 1:
            status_fd, argv = int(argv[1]), argv[2:]
        else:
            break
    if len(argv) < 2:
        sys.stderr.write("usage: python -m rattan.runtime.nsexec [--linger] [--ctrl-c-fd FD] [--status-fd FD] [--cpus LIST] "
                         "NETNS_PATH CMD [ARGS...]\n")
        return 2
    # rattan blocks nothing on purpose, but a caller might have: CMD starts with a clean mask
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    sigint = signal.SIG_IGN if signal.getsignal(signal.SIGINT) == signal.SIG_IGN else signal.SIG_DFL
    if cpus is not None:
        from .cpus import CpuListError, parse_list
        try:
            os.sched_setaffinity(0, parse_list(cpus, "--cpus"))
        except (CpuListError, OSError) as e:
            sys.stderr.write(f"rattan: cannot run `{argv[1]}` on CPUs {cpus}: {e}\n")
            return 127
    try:
        enter(argv[0])
        _die_with_parent()
        if os.getppid() == 1:
            return 1  # the parent is already gone
        report_r, report_w = os.pipe()
        lifeline_r, lifeline_w = os.pipe()
        if _libc.unshare(CLONE_NEWPID | CLONE_NEWNS) != 0:
            raise _fail("unshare")
        if _libc.mount(None, b"/", None, MS_REC | MS_SLAVE, None) != 0:
            raise _fail("mount --make-rslave /")
        # signals that arrive before the init exists wait, rather than kill this process
        signal.pthread_sigmask(signal.SIG_BLOCK, set(FORWARDED) | {signal.SIGINT})
        init = os.fork()
    except OSError as e:
        sys.stderr.write(f"rattan: cannot run `{argv[1]}` in {argv[0]}: {e.strerror}\n")
        return 127
    if init == 0:
        os.close(report_r)
        os.close(lifeline_w)
        if ctrl_c_fd is not None:
            os.close(ctrl_c_fd)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        _init(argv[1:], linger, report_w, lifeline_r, sigint, status_fd)
    if status_fd is not None:
        os.close(status_fd)  # the init's copy is the one that reports; EOF when it is gone
    os.close(report_w)
    os.close(lifeline_r)

    def forward(signum, frame):
        try:
            os.kill(init, signum)
        except ProcessLookupError:
            pass

    def ctrl_c(signum, frame):
        # rattan asks whether a SIGINT it got came from the terminal (the whole foreground
        # process group, this process included) or was sent to rattan alone
        try:
            os.write(ctrl_c_fd, b"i")
        except OSError:
            pass

    for s in FORWARDED:
        signal.signal(s, forward)
    signal.signal(signal.SIGINT, ctrl_c if ctrl_c_fd is not None else signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    _, init_status = os.waitpid(init, 0)
    for s in FORWARDED:  # init is reaped: its PID may be reused, so nothing is forwarded to it now
        signal.signal(s, signal.SIG_IGN)
    text = b""
    while chunk := os.read(report_r, 64):
        text += chunk
    if text and text != b"None":
        return _exit_as(int(text))
    return _exit_as(init_status) if os.WIFSIGNALED(init_status) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
