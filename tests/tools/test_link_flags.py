"""`rattan link` turns its flags into a channel (no root needed to check them)."""
from __future__ import annotations


def test_link_prints_the_path_it_would_run(run_cli):
    code, out, _ = run_cli("link", "--uplink-rate", "10Mbps", "--uplink-delay", "20ms", "--downlink-loss", "1%",
                           "--uplink-queue", "droptail { packets = 100 }", "--print")
    assert code == 0
    assert "left -> bw { rate = 10Mbps, queue = droptail { packets = 100 } } -> delay { delay = 20ms } -> right" in out
    assert "right -> loss { rate = 1% } -> left" in out


def test_link_reports_a_bad_flag_value_with_the_compiler_message(run_cli):
    code, _, err = run_cli("link", "--uplink-rate", "10Mbs", "--", "true")
    assert code == 1
    assert "error[RTN004]" in err and "did you mean `10Mbps`" in err
