"""The named extractors on real outputs captured over loopback (tests/batch/data/README.md says how)."""
from __future__ import annotations

from pathlib import Path

import pytest

from rattan.batch.extractors import EXTRACTORS, ExtractError, extract

DATA = Path(__file__).parent / "data"


def read(name: str) -> str:
    return (DATA / name).read_text()


def test_iperf3_tcp_client_has_both_ends():
    m = extract("iperf3", read("iperf3_tcp_client.json"))
    # goodput is the receiver's figure (sum_received), not the sender's (which is larger)
    assert m["goodput_bps"] == pytest.approx(22147153369.891384)
    assert m["received_bytes"] == 2769551360 and m["sent_bytes"] == 2776104960
    assert m["retransmits"] == 0 and m["retransmit_rate"] == 0.0
    assert m["rtt_mean_ms"] == pytest.approx(0.073)  # iperf3 writes microseconds
    assert m["duration_s"] == pytest.approx(1.000418)
    assert m["sender_tcp_congestion"] == "bbr"


def test_iperf3_retransmit_rate_from_the_senders_figures():
    # a 2 s transfer through a rattan channel with a 2 % loss cell: 22 retransmits, MSS 1448 B
    m = extract("iperf3", read("iperf3_tcp_loss_client.json"))
    assert m["retransmits"] == 22
    assert m["sent_bytes"] == 1840408
    assert m["retransmit_rate"] == pytest.approx(22 * 1448 / 1840408)
    assert m["goodput_bps"] == pytest.approx(6080557.107088066)
    assert m["rtt_mean_ms"] == pytest.approx(22.649)
    assert m["sender_tcp_congestion"] == "cubic"


def test_iperf3_server_side_has_only_its_own_end():
    m = extract("iperf3", read("iperf3_tcp_server.json"))
    assert m["goodput_bps"] == pytest.approx(22147153369.891384)  # same figure the client got
    assert m["received_bytes"] == 2769551360
    # the server received: iperf3 writes zeros for the sender's end, which must not look like data
    assert "sent_bytes" not in m and "retransmits" not in m and "retransmit_rate" not in m


def test_iperf3_reverse_client_and_server():
    client = extract("iperf3", read("iperf3_tcp_reverse_client.json"))
    assert client["received_bytes"] == 10485760 == client["sent_bytes"]
    assert client["goodput_bps"] == pytest.approx(19165199908.6132)
    assert "rtt_mean_ms" not in client  # the remote end sent: iperf3 reports no RTT (all zeros)
    server = extract("iperf3", read("iperf3_tcp_reverse_server.json"))
    assert server["sent_bytes"] == 10485760 and server["retransmits"] == 0
    assert server["rtt_mean_ms"] == pytest.approx(0.052)
    assert "goodput_bps" not in server and "received_bytes" not in server


def test_iperf3_reverse_client_through_a_policer():
    # `-R` through the case study's 2 Mbit/s policer: the phone receives, the server sends
    client = extract("iperf3", read("iperf3_tcp_reverse_policer_client.json"))
    server = extract("iperf3", read("iperf3_tcp_reverse_policer_server.json"))
    # goodput is the receiving client's own end (sum_received), not the server's sending rate
    assert client["goodput_bps"] == pytest.approx(2030043.826214901)
    assert client["received_bytes"] == 1048576 and client["duration_s"] == pytest.approx(4.13223)
    # retransmits are the sending server's, which the client reports in sum_sent: its own output agrees
    assert client["retransmits"] == 171 == server["retransmits"]
    assert client["sent_bytes"] == 1048576 == server["sent_bytes"]
    assert client["retransmit_rate"] == pytest.approx(171 * 1448 / 1048576)  # 23.6 % of the segments
    assert client["sender_tcp_congestion"] == "cubic"  # -C reached the server, which sends
    assert "rtt_mean_ms" not in client and server["rtt_mean_ms"] == pytest.approx(63.347)


def test_iperf3_udp_client_and_server():
    client = extract("iperf3", read("iperf3_udp_client.json"))
    assert client["goodput_bps"] == pytest.approx(10220325.055332184)
    assert client["jitter_ms"] == pytest.approx(0.01808069256498112)
    assert client["lost_percent"] == 0.0 and client["packets"] == 39 and client["lost_packets"] == 0
    assert "retransmits" not in client
    server = extract("iperf3", read("iperf3_udp_server.json"))
    assert server["goodput_bps"] == pytest.approx(10220325.055332184)
    assert server["packets"] == 39
    assert "sent_bytes" not in server


@pytest.mark.parametrize("name, stderr, message", [
    ("iperf3_text.txt", "", "iperf3 output is not JSON: run it with -J"),
    ("iperf3_refused.json", "", "iperf3 reported an error: unable to connect to server: Connection refused"),
    ("iperf3_server_interrupted.json", "", "iperf3 reported an error: interrupt - the server has terminated"),
])
def test_iperf3_errors_say_what_was_expected(name, stderr, message):
    with pytest.raises(ExtractError) as e:
        extract("iperf3", read(name), stderr)
    assert str(e.value) == message


def test_iperf3_empty_output_shows_stderr():
    with pytest.raises(ExtractError, match=r"printed nothing on stdout: run it with -J \(stderr: iperf3: error"):
        extract("iperf3", "", "iperf3: error - unable to connect to server: Connection refused\n")
    with pytest.raises(ExtractError, match="no `end` section"):
        extract("iperf3", '{"start": {}, "intervals": []}')


def test_ping_loopback():
    m = extract("ping", read("ping_loopback.txt"))
    assert m == {"transmitted": 3, "received": 3, "loss_rate": 0.0, "rtt_min_ms": 0.054,
                 "rtt_avg_ms": 0.069, "rtt_max_ms": 0.093, "rtt_mdev_ms": 0.017}


def test_ping_partial_and_total_loss():
    m = extract("ping", read("ping_loss.txt"))  # through a 30 % loss cell of a rattan channel
    assert (m["transmitted"], m["received"]) == (10, 7)
    assert m["loss_rate"] == pytest.approx(0.3)
    assert m["rtt_avg_ms"] == pytest.approx(10.182)
    lost = extract("ping", read("ping_all_lost.txt"))
    assert lost == {"transmitted": 3, "received": 0, "loss_rate": 1.0}  # no rtt line at all


def test_ping_errors():
    with pytest.raises(ExtractError) as e:
        extract("ping", read("ping_unreachable.txt"), read("ping_unreachable.err"))
    assert "no `N packets transmitted, M received` summary" in str(e.value)
    assert "ping -c 3 HOST" in str(e.value)
    assert "stderr: ping: connect: Network is unreachable" in str(e.value)


def test_curl_json():
    m = extract("curl", read("curl_json.txt"))
    assert m["http_code"] == 200 and m["exitcode"] == 0
    assert m["size_download_bytes"] == 100000
    assert m["time_total_s"] == pytest.approx(0.005736)
    assert m["speed_download_bps"] == 17433751 * 8  # curl counts bytes per second
    assert all(isinstance(v, (int, float)) for v in m.values())  # urls, ip addresses, nulls left out
    assert "url" not in m and "errormsg" not in m
    refused = extract("curl", read("curl_json_refused.txt"))
    assert refused["exitcode"] == 7 and refused["http_code"] == 0
    assert extract("curl", read("curl_json_404.txt"))["http_code"] == 404


def test_curl_name_value_lines():
    m = extract("curl", read("curl_lines.txt"))
    assert m == {"http_code": 200, "time_connect_s": 0.000094, "time_starttransfer_s": 0.000891,
                 "time_total_s": 0.000964, "size_download_bytes": 100000,
                 "speed_download_bps": 103734439 * 8}  # content_type is a word: left out


def test_curl_errors():
    with pytest.raises(ExtractError, match=r"curl printed nothing on stdout: run it with -o /dev/null -w '%\{json\}'"):
        extract("curl", "")
    with pytest.raises(ExtractError, match="neither `-w '%{json}'` nor `name=value` lines"):
        extract("curl", "<html>hello</html>")


def test_unknown_extractor_lists_the_known_ones():
    assert set(EXTRACTORS) == {"iperf3", "ping", "curl"}
    with pytest.raises(ExtractError, match="unknown extractor `iperf`: extractors are curl, iperf3, ping"):
        extract("iperf", "{}")
