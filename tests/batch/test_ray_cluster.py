"""A real two-node Ray cluster on loopback with token authentication: a batch with --cluster, refusals.

The cluster (tests/batch/ray_cluster.py) runs in a network namespace with only loopback; both
nodes declare one `rattan_cores` and one `rattan_instances`, so each takes one run at a time and a
batch of several runs must use both. Afterwards nothing of the cluster may be left running.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("ray")

from .ray_cluster import RayCluster, referencing  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root (a network namespace for the cluster, and real runs)"
    for tool in ("ip", "ss", "ping"):
        if shutil.which(tool) is None:
            return f"needs `{tool}` (installed by .ci/run)"
    return None


pytestmark = pytest.mark.skipif(_why_not() is not None, reason=_why_not() or "")


@pytest.fixture(scope="module")
def cluster():
    c = RayCluster(cores_per_node=1, instances_per_node=1)
    try:
        c.start()
        yield c
    finally:
        root, netns = c.root, c.netns
        c.stop()
        # nothing of the cluster is left: no process in its namespace or holding its folders
        assert not referencing(root), "processes of the Ray cluster are still running"
        assert subprocess.run(["ip", "netns", "pids", netns], capture_output=True).returncode != 0
        assert not root.exists()


# a driver run inside the cluster's namespace: RayExecutor on the cluster, jobs that only sleep
EXECUTOR_DRIVER = textwrap.dedent("""
    import json, sys, time
    from rattan.batch.ray_executor import RayExecutor

    def sleepy(job):
        started = time.time()
        time.sleep(2)
        return {"key": job["key"], "status": "ok", "t0": started, "t1": time.time()}

    ex = RayExecutor(sys.argv[1], token=open(sys.argv[2]).read().strip(), run_job=sleepy)
    described, slots = ex.describe(), ex.slots
    futures = [ex.submit({"key": f"j{i}", "resources": {"cores": 1, "instances": 1}}) for i in range(4)]
    results = [f.result(timeout=300) for f in futures]
    ex.close()
    print(json.dumps({"describe": described, "slots": slots, "results": results}))
""")


def test_jobs_spread_over_both_nodes_one_run_per_node_at_a_time(cluster):
    r = cluster.run([sys.executable, "-c", EXECUTOR_DRIVER, cluster.address, str(cluster.token_file)],
                    300, env=cluster.env(token=False))
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["describe"] == f"ray at {cluster.address}, 2 nodes, 2 slots"
    results = out["results"]
    assert {res["machine"] for res in results} == set(cluster.nodes)
    for node in cluster.nodes:  # a node declaring one core never ran two jobs at once
        mine = sorted((res for res in results if res["machine"] == node), key=lambda res: res["t0"])
        for a, b in zip(mine, mine[1:]):
            assert b["t0"] >= a["t1"] - 0.05, (a, b)


def test_a_driver_without_the_token_is_refused(cluster):
    code = ("import ray; ray.init(address=%r, logging_level='ERROR'); "
            "print('CONNECTED', ray.get(ray.remote(lambda: 'ran code').remote()))" % cluster.address)
    r = cluster.run([sys.executable, "-c", code], 180, env=cluster.env(token=False))
    assert r.returncode != 0
    assert "CONNECTED" not in r.stdout
    assert "Authentication token is missing or incorrect" in r.stderr


def test_a_driver_with_a_wrong_token_is_refused(cluster):
    code = "from rattan.batch.ray_executor import RayExecutor; RayExecutor(%r, token='0' * 64)" % cluster.address
    r = cluster.run([sys.executable, "-c", code], 180, env=cluster.env(token=False))
    assert r.returncode != 0
    assert "RayExecutorError" in r.stderr and "Authentication" in r.stderr


def test_nothing_listens_beyond_loopback(cluster):
    links = subprocess.run(["ip", "-n", cluster.netns, "-o", "link"], capture_output=True, text=True).stdout
    assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"]
    listeners = cluster.listeners()
    assert listeners, "the cluster should be listening"
    for address in listeners:
        host = address.rsplit(":", 1)[0].strip("[]")
        assert host in ("127.0.0.1", "::ffff:127.0.0.1", "::1"), listeners


EXPERIMENT = """\
experiment: ray-cluster
topology: path.rtn
sweep:
  count: [2, 3]
seeds: 2
workload:
  - endpoint: left
    name: ping
    command: "ping -c {count} -i 0.2 $RATTAN_RIGHT_IP"
    extract: ping
resources: {cores: 1, instances: 1}
timeout: 60s
retries: 1
database: results.sqlite
"""


def test_rattan_batch_with_cluster_records_each_nodes_name(cluster, tmp_path):
    pytest.importorskip("rattan.batch.runner", reason="rattan batch (the `batch` helper's runner) is not merged yet")
    store = pytest.importorskip("rattan.batch.store", reason="the results store is not merged yet")
    shutil.copy(ROOT / "examples" / "broadband.rtn", tmp_path / "path.rtn")
    (tmp_path / "exp.yaml").write_text(EXPERIMENT)
    rattan = str(Path(sys.executable).parent / "rattan")
    r = cluster.run([rattan, "batch", str(tmp_path / "exp.yaml"), "--cluster", cluster.address], 600,
                    env=cluster.env(), cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    db = store.open_store(str(tmp_path / "results.sqlite"))
    try:
        runs = db.runs("ray-cluster")
    finally:
        db.close()
    assert len(runs) == 4 and {run["status"] for run in runs} == {"ok"}
    assert {run["machine"] for run in runs} == set(cluster.nodes)
    assert all(run["rattan_version"] for run in runs)
