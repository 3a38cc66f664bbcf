"""The AF_XDP evaluation's forwarders (benchmarks/afxdp) build, and each carries traffic both ways
between two namespaces: the benchmark's figures are of forwarders that work (it measures them,
benchmarks/afxdp_forwarding.py; this only checks that they forward and clean up)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "benchmarks")
sys.path.insert(0, BENCHMARKS)

from afxdp.build import BuildError, build  # noqa: E402


def _cc_or_skip() -> None:
    if not any(shutil.which(cc) for cc in ("cc", "gcc", "clang")):
        pytest.skip("needs a C compiler (apt-get install gcc)")


def test_both_forwarders_build(tmp_path):
    """ring_fwd (with rattan's io.c compiled in) and xsk_fwd compile warning-free and run."""
    _cc_or_skip()
    exes = build(str(tmp_path))
    assert set(exes) == {"ring_fwd", "xsk_fwd"}
    for exe in exes.values():
        r = subprocess.run([exe], capture_output=True, text=True)
        assert r.returncode == 2 and "usage" in r.stderr


def test_a_build_error_names_the_forwarder(tmp_path, monkeypatch):
    """A forwarder that does not compile is reported with its name and the compiler's message."""
    _cc_or_skip()
    import afxdp.build as b
    monkeypatch.setitem(b.FORWARDERS, "ring_fwd", ["-DIO_FRAME_MAX=not_a_number"])
    with pytest.raises(BuildError, match="ring_fwd does not compile"):
        build(str(tmp_path))


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root for network namespaces, raw and AF_XDP sockets"
    for tool in ("ping", "ip"):
        if shutil.which(tool) is None:
            return f"needs `{tool}`"
    if subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode != 0:
        return "network namespaces are not available here"
    return None


def _counts(line: str) -> dict[str, float]:
    return {k: float(v) for k, v in (kv.split("=") for kv in line.split())}


@pytest.mark.netns
@pytest.mark.parametrize("argv", [["ring_fwd"], ["xsk_fwd", "--mode", "skb"], ["xsk_fwd", "--mode", "drv"],
                                  ["xsk_fwd", "--mode", "drv", "--copy", "--timestamp"]], ids=" ".join)
def test_each_forwarder_carries_ping_both_ways_and_leaves_nothing(tmp_path, argv):
    """Every ping crosses the forwarder and comes back through it (with --timestamp, each frame
    carries its receive time from the XDP program); afterwards no XDP program stays on the middle
    veths and the namespaces are gone."""
    why = _why_not()
    if why:
        pytest.skip(why)
    _cc_or_skip()
    import afxdp_forwarding as bench
    exes = build(str(tmp_path))
    with bench.topology(200, routed=False) as (path, middle):
        names = [n for n in bench.ip("netns", "list").split() if n.startswith(f"hxdp-{os.getpid()}-200-")]
        assert len(names) == 3, names
        fwd = bench.Forwarder.start(middle, [exes[argv[0]], *argv[1:], "hxdp-mc", "hxdp-ms"])
        try:
            if argv[0] == "xsk_fwd":
                links = json.loads(bench.ip("-j", "-n", middle, "link", "show"))
                assert all("xdp" in x for x in links if x["ifname"].startswith("hxdp-m")), links
            ping = bench.ping_rtt(path, 20)
        finally:
            fwd.stop()
        assert ping["replies"] == 20, ping
        counts = _counts(fwd.counts)
        assert counts["forwarded_ab"] >= 20 and counts["forwarded_ba"] >= 20, counts
        if "--timestamp" in argv:
            assert counts["stamped"] == counts["forwarded_ab"] + counts["forwarded_ba"], counts
            assert 0 < counts["stamp_age_avg_us"] < 1e6, counts
        links = json.loads(bench.ip("-j", "-n", middle, "link", "show"))
        assert not any("xdp" in x for x in links), "the XDP program outlived its forwarder"
    left = set(bench.ip("netns", "list").split())
    assert not left & set(names)
