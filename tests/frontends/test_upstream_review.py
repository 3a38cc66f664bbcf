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


ROUTER = '[cells.r]\ntype = "Router"\negress_connections = ["left", "right"]\nrouting_table = [{ %s }]\n'


def test_a_route_prefix_without_its_length_gets_the_host_prefix_as_fix():
    """Upstream's RoutingEntry.prefix is an IpNet, which needs `/len`: "10.2.1.1" is refused."""
    (d,) = [d for d in diags_of(ROUTER % 'prefix = "10.2.1.1", interface_id = 0') if d.is_error]
    assert d.code == "RTN073" and d.fix == '"10.2.1.1/32"' and "10.2.1.1/32" in d.help[0]
    (d,) = [d for d in diags_of(ROUTER % 'prefix = "fd00::1"') if d.is_error]
    assert d.fix == '"fd00::1/128"'


def test_an_interface_id_past_the_egress_connections_says_how_many_there_are():
    """Upstream's RouterCell::new refuses an interface_id >= the number of egress connections
    (InvalidInterfaceId); the message counts from 0 as upstream does."""
    (d,) = [d for d in diags_of(ROUTER % 'prefix = "10.2.0.0/16", interface_id = 2') if d.is_error]
    assert d.code == "RTN073" and "`egress_connections`" in d.message and "0 to 1" in d.message
    assert "2 entries" in d.message


def test_an_infinite_queue_is_named_with_the_right_article():
    text = '[cells.c]\ntype = "Bw"\nbandwidth = "1Mbps"\nqueue = "Infinite"\nqueue_config = { packet_limit = 5 }\n'
    (d,) = [d for d in diags_of(text) if d.code == "RTN075"]
    assert "of an Infinite queue" in d.message


@pytest.mark.parametrize("old, new", [("Config", "config"), ("Trace", "trace")])
def test_the_old_delay_per_packet_keys_say_upstream_refuses_them_and_name_the_new_ones(old, new):
    (d,) = diags_of(f'[cells.c]\ntype = "DelayPerPacket"\n{old} = "m.json"\n')
    assert d.code == "RTN071" and d.is_error and "upstream refuses it" in d.message and d.fix == new
    assert any("snake_case" in h for h in d.help)


def test_a_relative_spy_path_says_where_upstream_would_write_the_capture(tmp_path, monkeypatch):
    """Upstream's Spy opens `path` from the working directory; Rattan from the document's folder."""
    (tmp_path / "configs").mkdir()
    text = '[cells.s]\ntype = "Spy"\npath = "up.pcap"\n'
    monkeypatch.chdir(tmp_path)
    (d,) = [d for d in diags_of(text, str(tmp_path / "configs" / "a.toml")) if d.code == "RTN076"]
    assert str(tmp_path / "up.pcap") in d.message and str(tmp_path / "configs" / "up.pcap") in d.message
    assert d.severity == "warning"
    monkeypatch.chdir(tmp_path / "configs")  # the same place both ways: nothing to say
    assert [d for d in diags_of(text, str(tmp_path / "configs" / "a.toml")) if d.code == "RTN076"] == []


def test_convert_says_a_rtn_run_has_rattans_layout_and_the_router_upstreams_addresses():
    """The converted .rtn compiles to the same plan but runs on Rattan's own namespaces and addresses:
    the header says so, and that a router's prefixes were written for upstream's 10.1.i/10.2.i."""
    from rattan.tools.convert import convert_path
    from tests.conftest import ROOT
    corpus = ROOT / "tests" / "frontends" / "upstream"
    text, _, _ = convert_path(str(corpus / "it_multipath.toml"))
    head = [line for line in text.splitlines() if line.startswith("#")]
    assert any("Rattan's own namespaces and addresses" in line for line in head)
    assert any("10.1.i.x" in line for line in head)
    text, _, _ = convert_path(str(corpus / "it_delay.toml"))  # no router: no word about prefixes
    assert "10.1.i.x" not in text and "Rattan's own namespaces" in text


def test_sim_gives_endpoints_upstreams_addresses_so_an_upstream_routing_table_routes(tmp_path):
    """docs/upstream-format.md (Router): `rattan sim` gives an upstream document's endpoints the
    10.1.i.1/10.2.i.1 addresses `rattan run` gives them, so its routes match: each right veth gets
    its own flow, and a destination no route covers is dropped (`no_route`)."""
    from rattan.compiler import compile_path
    from rattan.plan import build_plan
    from rattan.registry import default_registry
    from rattan.runtime.sim import run
    path = tmp_path / "r.toml"
    path.write_text('[env]\nright_veth_count = 2\n[cells.r]\ntype = "Router"\n'
                    'egress_connections = ["right1", "right2"]\n'
                    'routing_table = [{ prefix = "10.2.1.0/24", interface_id = 0 }, '
                    '{ prefix = "10.2.2.0/24", interface_id = 1 }]\n'
                    '[links]\nleft = "r"\nright1 = "left"\nright2 = "left"\n')
    comp = compile_path(str(path))
    assert comp.ok, comp.diagnostics
    r = run(build_plan(comp.program, comp.sources, default_registry()), None,
            ["left->right1:cbr:1Mbps", "left->right2:cbr:1Mbps"], "1s", 1)
    for flow in r["flows"]:
        assert flow["sent_packets"] > 10 and flow["received_packets"] == flow["sent_packets"], flow
        assert not flow.get("misdelivered_packets")
    assert not r["cells"]["r"].get("dropped_by_reason")
    path.write_text(path.read_text().replace('"10.2.2.0/24"', '"10.2.9.0/24"'))  # right2 now unrouted
    comp = compile_path(str(path))
    r = run(build_plan(comp.program, comp.sources, default_registry()), None, ["left->right2:cbr:1Mbps"], "1s", 1)
    (flow,) = r["flows"]
    assert flow["sent_packets"] > 10 and flow["received_packets"] == 0
    assert r["cells"]["r"]["dropped_by_reason"] == {"no_route": flow["sent_packets"]}


def test_a_command_written_as_one_string_gets_the_argument_list_to_write():
    """Upstream's TaskCommands.left is a list (serde refuses a string); with a variable in it the
    fix goes through `sh -c`, since upstream runs the list with /usr/bin/env (src/main.rs)."""
    (d,) = [d for d in diags_of('[commands]\nleft = "iperf3 -c $RATTAN_BASE"\n') if d.is_error]
    assert d.code == "RTN073" and d.fix == '["sh", "-c", "iperf3 -c $RATTAN_BASE"]'
    (d,) = [d for d in diags_of('[commands]\nright = "iperf3 -s"\n') if d.is_error]
    assert d.fix == '["iperf3", "-s"]'


def test_a_variable_in_a_command_list_without_a_shell_warns_that_nothing_expands_it():
    """`left = ["iperf3", "-c", "$RATTAN_BASE"]`: /usr/bin/env gives iperf3 the text `$RATTAN_BASE`."""
    diags = diags_of('[commands]\nleft = ["iperf3", "-c", "$RATTAN_BASE", "-t", "5"]\n')
    (d,) = [d for d in diags if d.code == "RTN076"]
    assert d.severity == "warning" and "$RATTAN_BASE" in d.message and "/usr/bin/env" in d.message
    assert d.fix == '["sh", "-c", "iperf3 -c $RATTAN_BASE -t 5"]'
    # a shell's own script is expanded by that shell: nothing to say
    assert diags_of('[commands]\nleft = ["bash", "-c", "iperf3 -c $RATTAN_BASE"]\n') == []


def test_a_bare_number_as_a_rate_is_read_as_bits_per_second_in_the_hint():
    """A hint never changes the magnitude: 10000000 is 10 Mbit/s, not "10000000Mbps"."""
    text = '[cells.c]\ntype = "Bw"\nbandwidth = 10000000\nqueue = "Infinite"\n'
    (d,) = [d for d in diags_of(text) if d.is_error]
    assert d.code == "RTN073" and '"10Mbps"' in d.help[0] and "10000000Mbps" not in d.help[0]


def test_every_corpus_file_upstream_runs_without_ignored_keys_satisfies_the_document_schema():
    """An editor with `rattan schema` must not flag a file upstream runs as it is: the schema knows every
    field the front end maps (ingress_round_up on Delay/DelayReplay too)."""
    import json
    import tomllib
    from jsonschema import Draft7Validator
    from tests.conftest import ROOT
    schema = json.loads((ROOT / "schemas" / "document.schema.json").read_text())
    corpus = ROOT / "tests" / "frontends" / "upstream"
    verdicts = tomllib.loads((corpus / "VERDICTS.toml").read_text())["files"]
    checked = 0
    for name, v in verdicts.items():
        if v["verdict"] != "runs" or v.get("ignored"):
            continue
        doc = tomllib.loads((corpus / name).read_text())
        errors = [(list(e.absolute_path), e.message) for e in Draft7Validator(schema).iter_errors(doc)]
        assert not errors, (name, errors)
        checked += 1
    assert checked >= 8


@pytest.mark.parametrize("env, name, meant, other", [
    ("left_veth_count = 2", "left", "left1", "right"),
    ("", "left1", "left", "right"),
    ("right_veth_count = 3", "right4", "right1", "left"),
])
def test_a_link_to_a_veth_upstream_does_not_create_names_the_ones_it_does(env, name, meant, other):
    """Upstream's init_veth names one veth `left`, several `left1`, `left2`, ...; a link to another
    name is an unknown id (spawn_rattan refuses it). The error names the veths and recovers with the first."""
    text = (f"[env]\n{env}\n[cells.d]\ntype = \"Delay\"\ndelay = \"1ms\"\n"
            f"[links]\n{name} = \"d\"\nd = \"{other}\"\n")
    errors = [d for d in diags_of(text) if d.is_error]
    (d,) = errors
    assert d.code == "RTN040" and f"`{name}`" in d.message and d.fix == meant
    assert "upstream names" in d.message


def test_a_veth_name_fix_on_a_quoted_value_keeps_its_quotes():
    """A link's target is a TOML string: applying the fix must leave a string there (`"right"`, not `right`)."""
    text = '[cells.d]\ntype = "Delay"\ndelay = "1ms"\n[links]\nleft = "d"\nd = "right1"\nright = "left"\n'
    (d,) = [d for d in diags_of(text) if d.is_error]
    assert d.code == "RTN040" and d.fix == '"right"'


def test_an_id_that_is_already_a_name_keeps_it_when_another_id_turns_into_it():
    """`up-1` becomes `up_1` unless a cell is called `up_1` already: that one keeps its name (the control
    API finds a cell by its upstream id), and `up-1` gets another."""
    sources = SourceMap()
    text = ('[cells."up-1"]\ntype = "Delay"\ndelay = "1ms"\n[cells.up_1]\ntype = "Delay"\ndelay = "2ms"\n'
            '[links]\nleft = "up-1"\n"up-1" = "up_1"\nup_1 = "right"\nright = "left"\n')
    src = sources.add("t.toml", text, "t.toml")
    sink = Sink()
    file = load_document(src, sink, "toml")
    from rattan.syntax import ast
    (ch,) = file.body
    cells = {c.name: c for c in ch.body if isinstance(c, ast.CellDecl)}
    delays = {name: c.params[0].value.value for name, c in cells.items()}
    assert delays["up_1"] * 1000 == 2 and set(delays) == {"up_1", "up_1_"}


@pytest.mark.parametrize("text, whole", [("22.5ms", "22ms 500us"), ("12.0ms", "12ms"), ("2.5s", "2s 500ms")])
def test_a_fractional_model_duration_gets_the_same_time_in_whole_units(text, whole):
    """netem-trace reads model durations with humantime, which refuses fractions (the mptcp artifact's
    delay-jitter-15ms-mean.json): the error gives the exact whole-number spelling humantime reads."""
    from rattan.frontends.netem_trace import ModelError, parse_humantime, per_packet_model
    with pytest.raises(ModelError) as e:
        per_packet_model({"StaticDelayPerPacketConfig": {"delay": text}})
    assert f'"{whole}"' in str(e.value)
    assert parse_humantime(whole) == parse_humantime(text.replace(".5", "").replace(".0", "")) + (
        500_000 if text == "22.5ms" else 500_000_000 if text == "2.5s" else 0)


def test_convert_into_another_folder_keeps_the_trace_paths_working(run_cli, tmp_path):
    """`rattan convert configs/a.toml -o a.rtn`: the .rtn's relative paths start at its own folder, so
    convert rewrites them; the converted file checks and compiles to the same plan."""
    import json
    import shutil
    from tests.conftest import ROOT
    from tests.frontends.test_upstream_corpus import without_sources
    src_dir = tmp_path / "configs"
    shutil.copytree(ROOT / "tests" / "frontends" / "upstream", src_dir)
    out = tmp_path / "out" / "example.rtn"
    out.parent.mkdir()
    code, _, err = run_cli("convert", str(src_dir / "config_example.toml"), "-o", str(out))
    assert code == 0, err
    assert '"../configs/assets/24Mbps.trace"' in out.read_text()
    code, _, err = run_cli("check", str(out))
    assert code == 0, err
    code, a, _ = run_cli("compile", str(src_dir / "config_example.toml"))
    code2, b, err = run_cli("compile", str(out))
    assert code2 == 0, err
    pa, pb = json.loads(a), json.loads(b)
    assert without_sources(pa["channels"][0]["cells"]) == without_sources(pb["channels"][0]["cells"])


def test_a_quoted_whole_number_gets_the_number_without_quotes():
    text = '[cells.c]\ntype = "Bw"\nbandwidth = "1Mbps"\nqueue = "DropTail"\nqueue_config = { packet_limit = "60" }\n'
    (d,) = [d for d in diags_of(text) if d.is_error]
    assert d.code == "RTN073" and d.fix == "60" and "without quotes" in d.help[0]


def test_convert_names_the_run_flags_for_the_documents_packet_log_and_http_server(tmp_path):
    from rattan.tools.convert import convert_path
    path = tmp_path / "g.toml"
    path.write_text('[general]\npacket_log = "logs/x.rtl"\n[http]\nenable = true\nport = 9000\n'
                    '[cells.d]\ntype = "Delay"\ndelay = "5ms"\n[links]\nleft = "d"\nd = "right"\nright = "left"\n')
    text, _, _ = convert_path(str(path))
    assert "--packet-log logs/x.rtl --http 9000" in text


def test_yaml_diagnostics_name_sections_as_yaml_writes_them():
    sources = SourceMap()
    src = sources.add("t.yaml", "resource:\n  cores: [1]\n", "t.yaml")
    sink = Sink()
    load_document(src, sink, "yaml")
    (d,) = sink.sorted()
    assert "in `resource`" in d.message and "[resource]" not in d.message
    (d,) = diags_of("[resource]\ncores = [1]\n")
    assert "in [resource]" in d.message


def test_a_script_argument_of_another_interpreter_is_not_taken_for_an_unexpanded_variable():
    assert diags_of('[commands]\nleft = ["perl", "-e", "my $x = 1; print $x"]\n') == []
    (d,) = diags_of('[commands]\nleft = ["ping", "-c", "3", "${RATTAN_BASE}"]\n')
    assert d.code == "RTN076"


def test_convert_to_stdout_with_a_dash_keeps_the_paths_as_written(run_cli, tmp_path, monkeypatch):
    from tests.conftest import ROOT
    code, out, err = run_cli("convert", str(ROOT / "tests/frontends/upstream/config_example.toml"), "-o", "-")
    assert code == 0, err
    assert '"./assets/24Mbps.trace"' in out


def test_a_bad_routing_entry_is_one_error_without_graph_warnings_after_it(run_cli, tmp_path):
    """The router is still built from its other entries, so its egress links stay: no `no link out`
    or `reaches no endpoint` warning follows from the one error."""
    import json
    path = tmp_path / "r.toml"
    path.write_text('[env]\nright_veth_count = 2\n[cells.r]\ntype = "Router"\n'
                    'egress_connections = ["right1", "right2"]\n'
                    'routing_table = [{ prefix = "10.2.1.0/24", interface_id = 0 }, '
                    '{ prefix = "10.2.2.0/24", interface_id = 2 }, { prefix = "10.2.1.0/24", interface_id = 1 }]\n'
                    '[links]\nleft = "r"\nright1 = "left"\nright2 = "left"\n')
    code, out, _ = run_cli("check", "--format", "json", str(path))
    diags = json.loads(out)
    assert code == 1
    assert sorted(d["code"] for d in diags) == ["RTN073", "RTN073"], diags  # interface_id, duplicate
