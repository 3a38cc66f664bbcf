"""What an upstream Rattan user trips over first, found by trying our front end with upstream files
(issue 12 review): each test is one diagnostic that must say what upstream does and how to fix it."""
import textwrap

import pytest

from rattan.diagnostics import Sink
from rattan.frontends.upstream import load_document
from rattan.source import SourceMap


def diags_of(text: str, path: str = "test.toml") -> list:
    sources = SourceMap()
    src = sources.add(path, textwrap.dedent(text), path)
    sink = Sink()
    load_document(src, sink, "toml")
    return sink.sorted()


@pytest.mark.parametrize("kind", ["DelayReplay", "LossReplay"])
def test_a_delay_or_loss_replay_trace_must_be_a_json_or_toml_model(kind):
    """Upstream's DelayReplay/LossReplay get_trace (config/delay.rs, config/loss.rs) reads `.json` and
    `.toml` models only and refuses any other file ("Unknown trace file format")."""
    (d,) = [d for d in diags_of(f'[cells.c]\ntype = "{kind}"\ntrace = "steps.txt"\n') if d.is_error]
    assert d.code == "RTN051" and kind in d.message and "steps.txt" in d.message
    assert any("Unknown trace file format" in h for h in d.help)
    # a model file is read (and only then looked for): no format error
    assert not any(x.code == "RTN051" for x in diags_of(f'[cells.c]\ntype = "{kind}"\ntrace = "m.json"\n'))


@pytest.mark.parametrize("body, key, number", [
    ('type = "Bw"\nbandwidth = "10Mbps"\nqueue = "DropTail"\nqueue_config = { byte_limit = "150KB" }\n',
     "byte_limit", "150000"),
    ('type = "TokenBucket"\nrate = "1Mbps"\nburst = "10KB"\nlimit = "10 KiB"\n', "limit", "10240"),
])
def test_a_byte_count_written_as_a_size_string_gets_the_number_to_write(body, key, number):
    """Upstream's byte_limit and TokenBucket limit are `usize` (serde refuses a string): the error
    names the number of bytes the user meant."""
    (d,) = [d for d in diags_of("[cells.c]\n" + body) if d.is_error]
    assert d.code == "RTN073" and f"`{key}`" in d.message and d.fix == number
    assert any(f"{key} = {number}" in h for h in d.help)


def test_a_trace_found_only_where_upstream_looks_gets_the_path_from_the_documents_folder(tmp_path, monkeypatch):
    """Run from the project folder, upstream reads `traces/x.trace` from there; Rattan reads it from the
    document's folder, where it is missing: the warning gives the path that reaches upstream's file."""
    (tmp_path / "traces").mkdir()
    (tmp_path / "traces" / "x.trace").write_text("1\n")
    (tmp_path / "configs").mkdir()
    monkeypatch.chdir(tmp_path)
    text = '[cells.c]\ntype = "BwReplay"\ntrace = "traces/x.trace"\nqueue = "Infinite"\n'
    (d,) = [d for d in diags_of(text, str(tmp_path / "configs" / "a.toml")) if d.code == "RTN076"]
    assert d.fix == '"../traces/x.trace"' and "which exists" in d.message
    assert any('"../traces/x.trace"' in h for h in d.help)
