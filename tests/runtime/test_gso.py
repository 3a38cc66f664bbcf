"""GSO mode on real packets: TCP super-frames cross the engine whole where every cell is
segment-agnostic, are cut into segments where a cell needs them (`loss`), keep byte counts exact
(`bw`), and keep checksums right; plain mode still works (root, namespaces, iperf3; skipped
elsewhere by conftest)."""
from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from rattan.compiler import compile_text
from rattan.plan import build_plan
from rattan.registry import default_registry
from rattan.runtime.channel import choose_channel
from rattan.runtime.run import ChannelRun, in_namespace

CHANNEL = """
channel c {{
    endpoints left, right
    left -> {up} -> right
    right -> {down} -> left
}}
"""
PORT = 5231  # not the other real-run tests' port


def plan_for(up: str, down: str = "pass {}", offload: str = "gso") -> dict:
    comp = compile_text(CHANNEL.format(up=up, down=down), "<gso test>.rtn")
    assert comp.ok, comp.diagnostics
    plan = build_plan(comp.program, comp.sources, default_registry())
    plan["run"]["offload"] = offload
    return plan


def _stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def iperf3(live: ChannelRun, seconds: int = 2, extra: tuple[str, ...] = ()) -> dict:
    """One bounded TCP iperf3 run left -> right: the client's JSON end section."""
    left, right = live.net.endpoints["left"], live.net.endpoints["right"]
    server = in_namespace(right.netns_path, ["timeout", "30", "iperf3", "-s", "-1", "-p", str(PORT)],
                          dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        client = in_namespace(left.netns_path, ["timeout", "30", "iperf3", "-c", right.address, "-p", str(PORT),
                                                "-t", str(seconds), "-J", *extra],
                              dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, _ = client.communicate(timeout=40)
        finally:
            _stop(client)
        server.wait(10)
    finally:
        _stop(server)
    result = json.loads(out)
    assert "error" not in result, result["error"]
    return result["end"]


def run_iperf(plan: dict, seconds: int = 2):
    with ChannelRun(plan, choose_channel(plan, None), seed=1) as live:
        end = iperf3(live, seconds)
        time.sleep(0.2)
        live.stop()
        e, n = live.engine, live.nodes
        return end, {k: e.counters(v) for k, v in n.items()}, e.gso_stats(n["left"]), n


def test_pass_through_keeps_super_frames():
    end, counters, gso, _ = run_iperf(plan_for("pass {}", "pass {}"))
    assert end["sum_received"]["bytes"] > 10_000_000, end["sum_received"]
    assert gso["super_frames"] > 100, gso            # TSO frames crossed the engine
    assert gso["super_segments"] > 10 * gso["super_frames"], gso
    assert gso["cut_frames"] == 0, gso               # nothing on the path needs segments


def test_loss_sees_segments():
    plan = plan_for("loss { rate = 1% }")
    assert plan["channels"][0]["segmenting"] == ["left"]
    end, counters, gso, _ = run_iperf(plan)
    assert end["sum_received"]["bytes"] > 1_000_000, end["sum_received"]
    assert gso["super_frames"] > 0 and gso["cut_frames"] == gso["super_frames"], gso
    loss = counters["loss_1"] if "loss_1" in counters else next(c for k, c in counters.items() if k.startswith("loss"))
    # the cell counts segments: as many as the super-frames stood for, plus the ordinary frames
    assert loss.in_packets >= gso["super_segments"], (loss, gso)
    rate = loss.dropped_packets / loss.in_packets
    assert 0.005 < rate < 0.02, (loss.dropped_packets, loss.in_packets)
    assert end["sum_sent"]["retransmits"] > 0  # TCP saw the segments lost


def test_bw_counts_every_segment():
    plan = plan_for("bw { rate = 2Gbps }")
    assert "segmenting" not in plan["channels"][0]  # bw with an unbounded queue keeps super-frames
    end, counters, gso, _ = run_iperf(plan)
    bw = next(c for k, c in counters.items() if k.startswith("bw"))
    assert gso["super_frames"] > 100 and gso["cut_frames"] == 0, gso
    # out_bytes are IP bytes of every segment; the receiver's payload is that less 52 bytes of IP and
    # TCP headers (timestamps) per segment, and the cell also carried the handshake and the ends
    delivered = counters["right"].delivered_bytes
    assert delivered == bw.out_bytes
    payload = end["sum_received"]["bytes"]
    segments = counters["right"].delivered_packets
    assert payload < bw.out_bytes < payload * 1.06, (payload, bw.out_bytes)
    # with super-frames counted as one packet each, the per-packet headers could not add up
    assert bw.out_packets < segments * 1.01
    assert (bw.out_bytes - payload) / 52 > 0.9 * (payload / 1448), (bw.out_bytes, payload)


def test_segmenting_gives_complete_checksums(tmp_path):
    """Every TCP segment the receiver sees after cutting has a right checksum (tcpdump -vv). Merging
    at egress is off: a merged super-frame leaves with a partial checksum, as the kernel's own TSO
    frames do, which tcpdump calls incorrect."""
    plan = plan_for("loss { rate = 1% }")
    with ChannelRun(plan, choose_channel(plan, None), seed=1, merge=False) as live:
        right = live.net.endpoints["right"]
        cap = in_namespace(right.netns_path, ["timeout", "20", "tcpdump", "-i", right.ifname, "-nn", "-vv", "-c",
                                              "3000", "tcp", "and", "greater", "1000"], dict(os.environ),
                           stdout=open(tmp_path / "cap.txt", "w"), stderr=subprocess.DEVNULL)
        try:
            time.sleep(1.0)
            iperf3(live, 1, ("-b", "200M"))
            time.sleep(0.5)
        finally:
            _stop(cap)
    text = (tmp_path / "cap.txt").read_text()
    lines = [l for l in text.splitlines() if "cksum" in l]
    assert len(lines) > 100, text[-2000:]
    bad = [l for l in lines if "incorrect" in l or "bad cksum" in l]
    assert not bad, bad[:5]


def test_plain_mode_still_works():
    end, counters, gso, _ = run_iperf(plan_for("pass {}", "pass {}", offload="plain"))
    assert end["sum_received"]["bytes"] > 10_000_000, end["sum_received"]
    assert gso == {"super_frames": 0, "super_segments": 0, "cut_frames": 0, "merged_frames": 0, "merged_segments": 0}
    assert counters["right"].delivered_bytes <= counters["right"].delivered_packets * 1500


def tcp_csum_errors(netns_path: str) -> int:
    """The namespace's TCP InCsumErrors (/proc/net/snmp)."""
    p = in_namespace(netns_path, ["cat", "/proc/net/snmp"], dict(os.environ), stdout=subprocess.PIPE, text=True)
    out, _ = p.communicate(timeout=10)
    head, values = [l.split() for l in out.splitlines() if l.startswith("Tcp:")][:2]
    return int(values[head.index("InCsumErrors")])


def test_corrupt_hits_complete_checksums():
    """`corrupt` flips bits of segments whose checksum is complete: the receiver's kernel catches
    every one (with a partial checksum it would take the corrupted payload as good)."""
    plan = plan_for("corrupt { rate = 1% }")
    assert plan["channels"][0]["segmenting"] == ["left"]
    with ChannelRun(plan, choose_channel(plan, None), seed=1) as live:
        right = live.net.endpoints["right"]
        before = tcp_csum_errors(right.netns_path)
        end = iperf3(live, 2)
        time.sleep(0.3)
        errors = tcp_csum_errors(right.netns_path) - before
        live.stop()
        corrupt = next(live.engine.counters(n) for k, n in live.nodes.items() if k.startswith("corrupt"))
    assert end["sum_received"]["bytes"] > 1_000_000, end["sum_received"]
    assert corrupt.modified_packets > 50, corrupt
    assert errors >= 0.9 * corrupt.modified_packets, (errors, corrupt.modified_packets)


SEND = """
import hashlib, random, socket, sys
host, port, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng, h, sent = random.Random(7), hashlib.sha256(), 0
s = socket.create_connection((host, port), timeout=20)
while sent < total:
    chunk = rng.randbytes(min(1 << 16, total - sent))
    s.sendall(chunk)
    h.update(chunk)
    sent += len(chunk)
s.close()
print(h.hexdigest(), sent)
"""
RECEIVE = """
import hashlib, socket, sys
srv = socket.create_server((sys.argv[1], int(sys.argv[2])))
srv.settimeout(20)
c, _ = srv.accept()
c.settimeout(20)
h, got = hashlib.sha256(), 0
while True:
    b = c.recv(1 << 16)
    if not b:
        break
    h.update(b)
    got += len(b)
print(h.hexdigest(), got)
"""


def transfer(live: ChannelRun, total: int, port: int = PORT) -> tuple[str, str]:
    """Send `total` pseudo-random bytes left -> right over TCP to `port`: what each end hashed (sha256, count)."""
    import sys
    left, right = live.net.endpoints["left"], live.net.endpoints["right"]
    server = in_namespace(right.netns_path, ["timeout", "40", sys.executable, "-c", RECEIVE, right.address,
                                             str(port)], dict(os.environ), stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        client = in_namespace(left.netns_path, ["timeout", "40", sys.executable, "-c", SEND, right.address,
                                                str(port), str(total)], dict(os.environ), stdout=subprocess.PIPE,
                              text=True)
        try:
            sent, _ = client.communicate(timeout=45)
        finally:
            _stop(client)
        got, _ = server.communicate(timeout=45)
    finally:
        _stop(server)
    return sent.strip(), got.strip()


@pytest.mark.parametrize("cell", ["bw { rate = 1Gbps, queue = droptail { packets = 2000 } }", "loss { rate = 2% }"])
def test_merging_keeps_the_byte_stream(cell):
    """Segments cut at ingress leave by the receiver's port merged into super-frames again, and the
    receiver gets exactly the bytes sent: no payload lost, doubled or out of place, also where
    losses leave gaps in the sequence numbers that a run must not merge across."""
    plan = plan_for(cell)
    assert plan["channels"][0]["segmenting"] == ["left"]
    with ChannelRun(plan, choose_channel(plan, None), seed=1) as live:
        sent, got = transfer(live, 30_000_000)
        live.stop()
        gso = live.engine.gso_stats(live.nodes["right"])
    assert sent and sent == got, (sent, got)
    assert sent.endswith(" 30000000")
    assert gso["merged_frames"] > 100, gso
    assert gso["merged_segments"] > 2 * gso["merged_frames"], gso


def test_merging_off_sends_segments():
    plan = plan_for("bw { rate = 1Gbps, queue = droptail { packets = 2000 } }")
    with ChannelRun(plan, choose_channel(plan, None), seed=1, merge=False) as live:
        sent, got = transfer(live, 5_000_000)
        live.stop()
        gso = live.engine.gso_stats(live.nodes["right"])
    assert sent == got
    assert gso["merged_frames"] == 0 and gso["merged_segments"] == 0, gso

def run_io_harness(tmp_path, name: str, args: list[str], env: dict | None = None, mtu: int = 1500) -> dict:
    """Build tests/runtime/c/NAME.c (rattan's io.c compiled in) and run it on a veth pair lrx/ltx of
    a namespace of its own (no IPv6, no address: quiet): its key=value line."""
    import shutil
    cc = next((c for c in ("cc", "gcc", "clang") if shutil.which(c)), None)
    if cc is None:
        pytest.skip("needs a C compiler (apt-get install gcc)")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    exe = str(tmp_path / name)
    subprocess.run([cc, "-O2", "-Wall", "-Wextra", "-Werror", "-I", os.path.join(root, "rattan", "engine", "csrc"),
                    "-o", exe, os.path.join(root, "tests", "runtime", "c", f"{name}.c")], check=True)
    ns = f"h{name.replace('_', '')}-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        for argv in (["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"],
                     ["ip", "link", "add", "lrx", "mtu", str(mtu), "type", "veth", "peer", "name", "ltx", "mtu", str(mtu)],
                     ["ip", "link", "set", "lrx", "up"], ["ip", "link", "set", "ltx", "up"]):
            subprocess.run(["ip", "netns", "exec", ns, *argv], check=True)
        r = subprocess.run(["ip", "netns", "exec", ns, exe, "lrx", "ltx", *args], capture_output=True, text=True,
                           timeout=60, env={**os.environ, **(env or {})})
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=True)
    assert r.returncode == 0, r.stderr
    return {k: int(v) for k, v in (kv.split("=") for kv in r.stdout.split())}


def test_the_receive_buffers_drops_are_read_only_after_drops_and_exactly_at_the_end(tmp_path):
    """GSO mode's lost count (io_take_lost) against the kernel's drops, in a C harness over io.c
    (tests/runtime/c/io_lost.c) on a veth pair of a namespace of its own, the receive buffer at the
    kernel's least, GSO mode reading with recvmmsg alone (RATTAN_GSO_RX=socket, the fallback when
    the kernel refuses the ring): with no drops no call reads the kernel's statistics; a burst's
    drops after the last frame received are counted by the exact read (the end of a run); drops
    that a later frame reports are counted without it. Every frame is received or counted lost."""
    burst = 200
    c = run_io_harness(tmp_path, "io_lost", [str(burst)], env={"RATTAN_GSO_RX": "socket"})
    assert c["quiet_got"] == 100 and c["quiet_lost"] == 0 and c["quiet_calls"] == 0, c
    assert c["burst_exact"] > 0, c  # the buffer holds a few frames: the burst's last ones were dropped
    assert c["burst_got"] + c["burst_cheap"] + c["burst_exact"] == burst, c
    assert c["next_cheap"] > 0 and c["next_exact"] == 0, c  # the frame after the drops said so
    assert c["next_got"] + c["next_cheap"] == burst + 1, c


def test_the_gso_ring_keeps_every_size_in_order_and_counts_its_drops(tmp_path):
    """GSO mode's receive ring (tests/runtime/c/io_ring.c over io.c, a veth pair with MTU 9000): a
    seeded mix of 64-byte and 1514-byte frames, frames that just fit a ring frame and one byte
    more, and TCP and UDP super-frames of 64 KiB arrives in the order sent, byte-exact with each
    virtio-net header (GSO type and size, partial checksum's start and offset), the frames too
    large for the ring (and only those) through the socket's queue; copies the queue had no room
    for are counted lost as they come, the ring's own drops by the kernel's count."""
    n = 2000
    c = run_io_harness(tmp_path, "io_ring", [str(n)], mtu=9000)
    assert c["mixed_got"] == n and c["mixed_bad"] == 0 and c["mixed_lost"] == 0, c
    assert c["mixed_copies"] == c["mixed_over"] > n // 3, c       # super-frames and the one byte too many
    assert c["recvmmsg_calls"] < c["mixed_copies"] / 4, c           # read in batches, not one call each
    assert c["full_got"] == 9 and c["full_cheap"] == 7, c           # 1 of 8 super-frames queued, 7 lost, 8 small
    assert c["ring_got"] == 4096 and c["ring_cheap"] == 0 and c["ring_exact"] == 100, c
    assert c["again_got"] == 4097 and c["again_cheap"] == 0, c   # drops after the last frame wait for the next
    assert c["after_cheap"] == 100 and c["after_exact"] == 0, c


UDP_PATTERN = """
BASE = bytes((i * 7) & 0xff for i in range(2048))
SHIFT = [bytes((x + c) & 0xff for x in range(256)) for c in range(256)]
def body(seq, size):  # what datagram `seq` of `size` bytes carries: its number, then a pattern of it
    return seq.to_bytes(4, "big") + BASE[:size - 4].translate(SHIFT[(seq * 131) & 0xff])
"""
UDP_SEND = UDP_PATTERN + """
import socket, sys, time
host, port, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
seq = 0
def datagram(size):
    global seq
    seq += 1
    return body(seq - 1, size)
for r in range(rounds):
    s.sendto(datagram(22), (host, port))                  # a 64-byte frame
    s.sendto(datagram(1472), (host, port))                # a 1514-byte frame
    s.sendto(datagram(22), (host, port))
    s.sendmsg([b"".join(datagram(1472) for _ in range(44))], [(socket.SOL_UDP, 103, (1472).to_bytes(2, "little"))],
               0, (host, port))                           # UDP_SEGMENT: one 64 KiB super-frame of 44 datagrams
    s.sendto(datagram(22), (host, port))
    time.sleep(0.003)
print(seq)
"""
UDP_RECEIVE = UDP_PATTERN + """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)          # SO_RCVBUFFORCE: room for the whole test
s.bind((sys.argv[1], int(sys.argv[2])))
s.settimeout(20)
expected, got = int(sys.argv[3]), []
print("ready", flush=True)
try:
    while len(got) < expected:
        got.append(s.recv(4096))
        s.settimeout(3)
except socket.timeout:
    pass
seqs = [int.from_bytes(b[:4], "big") for b in got]
disorder = sum(a != i for i, a in enumerate(seqs))
bad = sum(b != body(q, len(b)) for q, b in zip(seqs, got))
print(len(got), disorder, bad)
"""


def test_udp_of_every_size_crosses_in_order():
    """64-byte and 1514-byte UDP frames and UDP GSO super-frames of 64 KiB (UDP_SEGMENT), mixed,
    through `pass` in GSO mode: the small frames come from the receive ring, the super-frames whole
    from the socket's queue, and the receiver gets every datagram byte-exact in the order sent."""
    import sys
    rounds = 300
    expected = rounds * 48
    with ChannelRun(plan_for("pass {}", "pass {}"), choose_channel(plan_for("pass {}", "pass {}"), None),
                    seed=1) as live:
        left, right = live.net.endpoints["left"], live.net.endpoints["right"]
        server = in_namespace(right.netns_path, ["timeout", "40", sys.executable, "-c", UDP_RECEIVE, right.address,
                                                 str(PORT), str(expected)], dict(os.environ), stdout=subprocess.PIPE,
                              text=True)
        try:
            assert server.stdout.readline().strip() == "ready"
            client = in_namespace(left.netns_path, ["timeout", "40", sys.executable, "-c", UDP_SEND, right.address,
                                                    str(PORT), str(rounds)], dict(os.environ), stdout=subprocess.PIPE,
                                  text=True)
            try:
                sent, _ = client.communicate(timeout=45)
            finally:
                _stop(client)
            out, _ = server.communicate(timeout=45)
        finally:
            _stop(server)
        live.stop()
        gso = live.engine.gso_stats(live.nodes["left"])
        lost = live.engine.counters(live.nodes["left"]).dropped_packets
    assert int(sent) == expected
    got, disorder, bad = map(int, out.split())
    assert lost == 0, lost
    assert (got, disorder, bad) == (expected, 0, 0)
    assert gso["super_frames"] >= rounds and gso["super_segments"] >= 44 * rounds, gso  # crossed whole


@pytest.mark.parametrize("logged", ["up", "down"])
def test_a_packet_log_of_one_direction_leaves_the_other_its_super_frames(tmp_path, logged):
    """`--log-cells` on one direction's cell: the endpoint whose packets reach it cuts super-frames
    (each record a packet as the wire has it), the other keeps them whole. TCP data goes left ->
    right (up): logging `down` (the ACKs' direction) leaves the data's super-frames whole."""
    from rattan.runtime import packet_log
    plan = plan_for("delay { delay = 1ms }", "delay { delay = 1ms }")
    channel = choose_channel(plan, None)
    cell = {ep: next(l["to"] for l in channel["links"] if l["from"] == ep) for ep in ("left", "right")}
    log_cell = cell["left" if logged == "up" else "right"]
    path = str(tmp_path / "run.log")
    with ChannelRun(plan, channel, packet_log=path, log_cells=[log_cell]) as live:
        end = iperf3(live)
        time.sleep(0.2)
        live.stop()
        gso = live.engine.gso_stats(live.nodes["left"])
    assert end["sum_received"]["bytes"] > 10_000_000, end["sum_received"]
    assert gso["super_frames"] > 100, gso
    if logged == "up":
        assert gso["cut_frames"] == gso["super_frames"], gso  # every one, before the logged cell saw it
    else:
        assert gso["cut_frames"] == 0, gso
    header, records = packet_log.read(path)
    assert [n["name"] for n in header["nodes"].values()] == [log_cell]
    assert max(r.size for r in records) <= 1500  # the log's packets are the wire's
