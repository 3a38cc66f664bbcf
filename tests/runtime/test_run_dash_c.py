"""One real `rattan run` with upstream's command line: `rattan run -c FILE --right ARGS... --left
ARGS...` (src/main.rs RunArgs) starts the right command, then the left one, with upstream's layout
and variables (root)."""
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.netns, pytest.mark.usefixtures("no_leftovers")]

UPSTREAM = Path(__file__).resolve().parents[1] / "frontends" / "upstream"


def test_dash_c_with_left_and_right_words_runs_upstreams_multipath_file(tmp_path):
    """Isolated mode needs both commands (upstream refuses it otherwise); given as --left/--right word
    lists they run: left1 reaches right1 (10.2.1.1, RATTAN_BASE) through the router."""
    script = tmp_path / "left.sh"
    script.write_text('echo "base=$RATTAN_BASE"\nping -c 1 -W 10 "$RATTAN_BASE" >/dev/null && echo reached\n')
    p = subprocess.run([sys.executable, "-m", "rattan", "run", "-q", "-c", str(UPSTREAM / "it_multipath.toml"),
                        "--right", "sleep", "1", "--left", "sh", str(script)],
                       capture_output=True, text=True, timeout=90)
    assert p.returncode == 0, p.stderr
    assert "base=10.2.1.1" in p.stdout and "reached" in p.stdout, (p.stdout, p.stderr)
