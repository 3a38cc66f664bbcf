"""The policer plugin in `rattan sim`: the very packets that pass through the built-in `token_bucket`
with `limit = 0` pass through it on the same input (same counts, same sequence numbers), and its
rate changes at run time."""
import json
import subprocess
import sys

import pytest


def _installed() -> bool:
    from rattan.registry import default_registry
    ct = default_registry().get("policer")
    return ct is not None and ct.library is not None


pytestmark = pytest.mark.skipif(not _installed(), reason="the `policer` plugin is not installed with its "
                                                         "library: `pip install .` first")


def sim(tmp_path, cell: str, flows: list[str], duration="2s", seed=1, extra="") -> dict:
    """One run of `left -> CELL -> right`; the result document."""
    path = tmp_path / "path.rtn"
    path.write_text(f"channel c {{\n    cell p: {cell}\n    left -> p -> right\n    right -> left\n{extra}}}\n")
    argv = [sys.executable, "-m", "rattan", "sim", str(path), "--duration", duration, "--seed", str(seed), "--json",
            "--samples"]
    for f in flows:
        argv += ["--flow", f]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def outcome(doc: dict) -> tuple:
    cell = doc["cells"]["p"]
    # which packets of each flow passed, by their sequence numbers: equal counts could hide other drops
    return (cell["in_packets"], cell["out_packets"], cell["dropped_packets"], cell["dropped_by_reason"],
            [f["samples"]["seq"] for f in doc["flows"]])


INPUTS = {
    "cbr at twice the rate": ["left->right:cbr:20Mbps"],
    "poisson just above the rate": ["left->right:poisson:12Mbps"],
    "two poisson flows of other sizes": ["left->right:poisson:6Mbps:size=400B", "left->right:poisson:9Mbps:size=1200B"],
}


@pytest.mark.parametrize("flows", INPUTS.values(), ids=INPUTS.keys())
@pytest.mark.parametrize("rate,burst", [("10Mbps", "3000B"), ("4Mbps", "64KiB")])
def test_it_passes_and_drops_what_token_bucket_does(tmp_path, flows, rate, burst):
    ours = outcome(sim(tmp_path, f"policer {{ rate = {rate}, burst = {burst} }}", flows))
    builtin = outcome(sim(tmp_path, f"token_bucket {{ rate = {rate}, burst = {burst}, limit = 0B }}", flows))
    assert ours == builtin
    assert ours[2] > 0 and set(ours[3]) == {"policer"}  # it did police


def test_a_packet_larger_than_the_bucket_never_passes(tmp_path):
    doc = sim(tmp_path, "policer { rate = 100Mbps, burst = 1499B }", ["left->right:cbr:1Mbps"], "1s")
    assert doc["cells"]["p"]["out_packets"] == 0 and doc["cells"]["p"]["dropped_packets"] > 0


def test_a_timeline_changes_the_rate_as_for_token_bucket(tmp_path):
    """10 Mbit/s, then 2 Mbit/s from 1 s: about (10 + 2) Mbit pass in 2 s, exactly as through token_bucket."""
    at = "    at 1s { p.rate = 2Mbps }\n"
    ours = sim(tmp_path, "policer { rate = 10Mbps, burst = 3000B }", ["left->right:cbr:20Mbps"], extra=at)
    builtin = sim(tmp_path, "token_bucket { rate = 10Mbps, burst = 3000B }", ["left->right:cbr:20Mbps"], extra=at)
    assert outcome(ours) == outcome(builtin)
    passed = ours["flows"][0]["received_bytes"] * 8
    assert abs(passed - 12_000_000) <= 3000 * 8 + 1500 * 8  # the burst, and one packet either side
