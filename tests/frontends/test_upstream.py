"""The upstream TOML/YAML front end: mapping onto the `.rtn` AST, spans and diagnostics."""
from __future__ import annotations

import json
import random
import textwrap
from fractions import Fraction
from pathlib import Path

import jsonschema
import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from rattan.diagnostics import Sink
from rattan.frontends.upstream import load_document
from rattan.source import SourceMap
from rattan.syntax import ast
from rattan.units import RATE, SIZE, TIME

ROOT = Path(__file__).resolve().parents[2]
# the reference examples: the shared ones when present, else the repository's copies
EXAMPLES = next((p for p in (ROOT.parent / "shared" / "examples", ROOT / "examples") if p.is_dir()),
                ROOT / "examples")
SCHEMA = json.loads((ROOT / "schemas" / "document.schema.json").read_text())


# ---- helpers -------------------------------------------------------------------
class Loaded:
    """One document run through the front end: its AST, diagnostics and source."""

    def __init__(self, text: str, fmt: str, name: str) -> None:
        self.sources = SourceMap()
        self.source = self.sources.add(name, text)
        self.sink = Sink()
        self.file = load_document(self.source, self.sink, fmt)

    @property
    def diags(self):
        return self.sink.sorted()

    @property
    def codes(self) -> list[str]:
        return [d.code for d in self.diags]

    @property
    def channel(self) -> ast.Channel:
        (ch,) = self.file.body
        return ch

    def stmts(self, kind):
        return [s for s in self.channel.body if isinstance(s, kind)]

    @property
    def cells(self) -> dict[str, ast.CellDecl]:
        return {c.name: c for c in self.stmts(ast.CellDecl)}

    def cell(self, name: str) -> str:
        return show_cell(self.cells[name])

    def param(self, cell: str, name: str) -> ast.Expr:
        return {f.name: f.value for f in self.cells[cell].params}[name]

    @property
    def chains(self) -> list[str]:
        return [show_chain(c) for c in self.stmts(ast.Chain)]

    @property
    def endpoints(self) -> list[str]:
        (e,) = self.stmts(ast.Endpoints)
        return [n for n, _ in e.names]

    def line(self, span) -> int:
        return self.source.line_col(span.start)[0]

    def text(self, span) -> str:
        return self.source.text[span.start:span.end]

    def only(self, code: str):
        found = [d for d in self.diags if d.code == code]
        assert len(found) == 1, self.diags
        return found[0]


def load(text: str, fmt: str = "toml", name: str | None = None) -> Loaded:
    return Loaded(textwrap.dedent(text), fmt, name or f"test.{fmt}")


def ok(text: str, fmt: str = "toml", name: str | None = None) -> Loaded:
    doc = load(text, fmt, name)
    assert doc.diags == [], doc.diags
    return doc


def show(e: ast.Expr) -> str:
    """An expression as `.rtn` text, to compare against what a user would write."""
    if isinstance(e, (ast.Quantity, ast.Number)):
        return e.text
    if isinstance(e, ast.Name):
        return e.text
    if isinstance(e, ast.String):
        return json.dumps(e.value)
    if isinstance(e, ast.Bool):
        return "true" if e.value else "false"
    if isinstance(e, ast.List):
        return "[" + ", ".join(show(i) for i in e.items) + "]"
    if isinstance(e, ast.Record):
        return f"{e.tag.text} {{ " + ", ".join(f"{f.name} = {show(f.value)}" for f in e.fields) + " }"
    raise AssertionError(f"unexpected {e!r}")


def show_cell(c: ast.CellDecl) -> str:
    params = ", ".join(f"{f.name} = {show(f.value)}" for f in c.params)
    return f"{c.name}: {c.type.text}" + (f" {{ {params} }}" if params else "")


def show_chain(c: ast.Chain) -> str:
    return " -> ".join(e.name.text + (f"[{e.port}]" if e.port is not None else "") for e in c.elements)


def walk(node):
    """Every AST node under `node` that has a span."""
    if isinstance(node, tuple):
        for x in node:
            yield from walk(x)
        return
    if not hasattr(node, "__dataclass_fields__"):
        return
    if hasattr(node, "span"):
        yield node
    for name in node.__dataclass_fields__:
        yield from walk(getattr(node, name))


# ---- the broadband example -----------------------------------------------------------
BROADBAND_CELLS = [
    "up_bw: bw { rate = 20Mbps, queue = droptail { packets = 1000 } }",
    "up_delay: delay { delay = 20ms }",
    # CoDel without limits is unbounded upstream (CoDelQueueConfig: both limits None)
    "down_bw: bw { rate = 100Mbps, queue = codel { target = 5ms, interval = 100ms, packets = unlimited } }",
    "down_delay: delay { delay = 20ms }",
    "down_loss: loss { rate = 0.001 }",
]
BROADBAND_CHAINS = [
    "left -> up_bw -> up_delay -> right",
    "right -> down_bw -> down_delay -> down_loss -> left",
]


@pytest.mark.parametrize("fmt", ["toml", "yaml"])
def test_broadband_example_maps_onto_the_rtn_cells_and_chains(fmt):
    path = EXAMPLES / f"broadband.{fmt}"
    if not path.exists():
        pytest.skip(f"{path} not present")
    doc = ok(path.read_text(), fmt, str(path))
    assert doc.channel.name == "broadband"
    assert doc.endpoints == ["left", "right"]
    assert [show_cell(c) for c in doc.stmts(ast.CellDecl)] == BROADBAND_CELLS
    assert doc.chains == BROADBAND_CHAINS
    assert dict(doc.file.settings)["env"]["mode"] == "Isolated"


def test_broadband_values_are_in_base_units():
    doc = ok(EXAMPLES.joinpath("broadband.toml").read_text() if EXAMPLES.joinpath("broadband.toml").exists()
             else BROADBAND_TOML)
    rate = doc.param("up_bw", "rate")
    assert (rate.value, rate.dim) == (Fraction(20_000_000), RATE)
    delay = doc.param("up_delay", "delay")
    assert (delay.value, delay.dim) == (Fraction(20, 1000), TIME)
    codel = doc.param("down_bw", "queue")
    assert [(f.name, f.value.value) for f in codel.fields[:2]] == [("target", Fraction(5, 1000)),
                                                                 ("interval", Fraction(1, 10))]
    assert codel.fields[2].name == "packets" and codel.fields[2].value.text == "unlimited"
    loss = doc.param("down_loss", "rate")
    assert isinstance(loss, ast.Number) and loss.value == Fraction(1, 1000)


BROADBAND_TOML = """\
[env]
mode = "Isolated"

[cells.up_bw]
type = "Bw"
bandwidth = "20Mbps"
queue = "DropTail"
queue_config = { packet_limit = 1000 }

[cells.up_delay]
type = "Delay"
delay = "20ms"

[cells.down_bw]
type = "Bw"
bandwidth = "100Mbps"
queue = "CoDel"
queue_config = { target = "5ms", interval = "100ms" }

[cells.down_delay]
type = "Delay"
delay = "20ms"

[cells.down_loss]
type = "Loss"
pattern = [0.001]

[links]
left = "up_bw"
up_bw = "up_delay"
up_delay = "right"
right = "down_bw"
down_bw = "down_delay"
down_delay = "down_loss"
down_loss = "left"
"""


def test_toml_and_yaml_give_the_same_ast_shape():
    toml_doc = ok(BROADBAND_TOML)
    as_yaml = yaml.safe_dump(tomllib.loads(BROADBAND_TOML), sort_keys=False)
    yaml_doc = ok(as_yaml, "yaml")
    assert [show_cell(c) for c in yaml_doc.stmts(ast.CellDecl)] == BROADBAND_CELLS
    assert [show_cell(c) for c in toml_doc.stmts(ast.CellDecl)] == BROADBAND_CELLS
    assert yaml_doc.chains == toml_doc.chains == BROADBAND_CHAINS


def test_spans_point_into_the_document_at_the_right_lines():
    doc = ok(BROADBAND_TOML)
    for node in walk(doc.file):
        assert 0 <= node.span.start <= node.span.end <= len(doc.source.text), node
    up = doc.cells["up_bw"]
    assert doc.text(up.name_span) == "up_bw"
    assert doc.line(up.name_span) == 4
    rate = up.params[0]
    assert doc.text(rate.name_span) == "bandwidth" and doc.line(rate.name_span) == 6
    assert doc.text(rate.value.span) == '"20Mbps"'
    packets = up.params[1].value.fields[0]
    assert doc.text(packets.name_span) == "packet_limit" and doc.line(packets.name_span) == 8
    first_chain = doc.stmts(ast.Chain)[0]
    assert [doc.line(e.span) for e in first_chain.elements] == [29, 29, 30, 31]


def test_yaml_spans_use_the_node_marks():
    doc = ok("""\
        cells:
          d:
            type: Delay
            delay: 20ms
        links: {left: d, d: right}
        """, "yaml")
    d = doc.cells["d"]
    assert doc.line(d.name_span) == 2 and doc.text(d.name_span) == "d"
    assert doc.text(d.params[0].value.span) == "20ms" and doc.line(d.params[0].value.span) == 4


# ---- each upstream cell type ------------------------------------------------------------
def cell_doc(body: str, fmt: str = "toml") -> Loaded:
    return load("[cells.c]\n" + textwrap.dedent(body), fmt)


@pytest.mark.parametrize("body, expected", [
    ('type = "Bw"\nbandwidth = "10Mbps"\nqueue = "Infinite"\n', "c: bw { rate = 10Mbps }"),
    ('type = "Bw"\nbandwidth = "10Mbps"\nqueue = "DropTail"\n', "c: bw { rate = 10Mbps, queue = infinite }"),
    ('type = "Bw"\nbandwidth = "10Mbps"\nqueue = "DropHead"\nqueue_config = { byte_limit = 150000 }\n',
     "c: bw { rate = 10Mbps, queue = drophead { bytes = 150KB } }"),
    ('type = "Bw"\nbandwidth = "1Gbps 200Mbps"\nqueue = "Infinite"\nbw_type = "LinkLayer"\n',
     "c: bw { rate = 1.2Gbps, overhead = 38B }"),
    ('type = "Bw"\nbandwidth = "10Mbps"\nqueue = "Infinite"\nbw_type = "NetworkLayer"\n', "c: bw { rate = 10Mbps }"),
    ('type = "Bw"\nbandwidth = "10Mbps"\nqueue = "CoDel"\n[cells.c.queue_config]\npacket_limit = 100\nmtu = 1500\n',
     "c: bw { rate = 10Mbps, queue = codel { packets = 100, mtu = 1.5KB } }"),
    ('type = "BwReplay"\ntrace = "traces/lte.up"\nqueue = "DropTail"\nqueue_config = { packet_limit = 50 }\n',
     'c: bw_trace { trace = "traces/lte.up", queue = droptail { packets = 50 }, start = first_packet }'),
    ('type = "BwReplay"\ntrace = "steps.json"\nqueue = "Infinite"\n',
     'c: bw_trace { trace = "steps.json", loop = false, start = first_packet }'),
    ('type = "Delay"\ndelay = "50ms"\n', "c: delay { delay = 50ms }"),
    # newer DelayCellConfig: arrivals rounded up to a multiple of it (mimics Mahimahi's 1 ms grid)
    ('type = "Delay"\ndelay = "20ms"\ningress_round_up = "1ms"\n', "c: delay { delay = 20ms, round_up = 1ms }"),
    ('type = "DelayReplay"\ntrace = "d.json"\ningress_round_up = "1ms"\n',
     'c: delay_trace { trace = "d.json", loop = false, start = first_packet, round_up = 1ms }'),
    ('type = "DelayReplay"\ntrace = "delay.json"\n',
     'c: delay_trace { trace = "delay.json", loop = false, start = first_packet }'),
    ('type = "Loss"\npattern = [0.01]\n', "c: loss { rate = 0.01 }"),
    ('type = "Loss"\npattern = []\n', "c: loss { rate = 0 }"),
    ('type = "Loss"\npattern = [0.1, 0.5, 0]\n', "c: loss { pattern = [0.1, 0.5, 0] }"),
    ('type = "LossReplay"\ntrace = "loss.toml"\nseed = 7\n',
     'c: loss_trace { trace = "loss.toml", loop = false, start = first_packet }'),
    ('type = "TokenBucket"\nlimit = 0\nrate = "2Mbps"\nburst = "683.6 KiB"\n',
     "c: token_bucket { rate = 2Mbps, burst = 700006B, limit = 0B }"),
    ('type = "TokenBucket"\nrate = "10Mbps"\nburst = "16KiB"\npeak_rate = "20Mbps"\nmin_burst = "1500"\n',
     "c: token_bucket { rate = 10Mbps, burst = 16KiB, peak_rate = 20Mbps, min_burst = 1.5KB, limit = unlimited }"),
    ('type = "Shadow"\n', "c: pass"),
    ('type = "Spy"\npath = "up.pcap"\n', 'c: spy { path = "up.pcap" }'),
])
def test_each_cell_type_maps_onto_a_builtin_cell(body, expected):
    doc = cell_doc(body)
    assert doc.diags == []
    assert doc.cell("c") == expected


def test_trace_paths_expand_environment_variables_like_upstream(monkeypatch):
    monkeypatch.setenv("TRACE_DIR", "/data/traces")
    doc = cell_doc('type = "BwReplay"\ntrace = "${TRACE_DIR}/lte.up"\nqueue = "Infinite"\n')
    assert doc.cell("c") == 'c: bw_trace { trace = "/data/traces/lte.up", start = first_packet }'


def test_router_routes_and_output_ports():
    doc = ok("""\
        [env]
        left_veth_count = 2

        [cells.router]
        type = "Router"
        egress_connections = ["left1", "left2"]

        [[cells.router.routing_table]]
        prefix = "10.1.1.0/24"
        interface_id = 0

        [[cells.router.routing_table]]
        prefix = "10.1.2.0/24"
        interface_id = 1

        [[cells.router.routing_table]]
        prefix = "0.0.0.0/0"

        [cells.down]
        type = "Delay"
        delay = "10ms"

        [links]
        left1 = "right"
        left2 = "right"
        right = "down"
        down = "router"
        """)
    # the entry without interface_id drops what it matches; upstream's router routes only IPv4
    assert doc.cell("router") == ('router: router { routes = [route { prefix = "10.1.1.0/24", port = 0 }, '
                                  'route { prefix = "10.1.2.0/24", port = 1 }, route { prefix = "0.0.0.0/0" }], '
                                  'only_ipv4 = true }')
    assert doc.chains == ["router[0] -> left1", "router[1] -> left2", "left1 -> right", "left2 -> right",
                          "right -> down -> router"]
    ports = [e for c in doc.stmts(ast.Chain) for e in c.elements if e.port is not None]
    assert [doc.text(e.span) for e in ports] == ['"left1"', '"left2"']
    second_route = doc.param("router", "routes").items[1]
    assert doc.line(second_route.span) == 12  # the `[[...routing_table]]` header


def test_router_from_upstream_delivers_each_flow_at_its_own_endpoint(tmp_path):
    """Converted, compiled and simulated: each endpoint gets exactly its flow's packets (in virtual time
    left veth i has upstream's 10.1.i.1, as in `rattan run`, so the /24 routes pick left1 and left2)."""
    from rattan.compiler import compile_path
    from rattan.plan import build_plan
    from rattan.registry import default_registry
    from rattan.runtime.sim import endpoint_addresses, run
    path = tmp_path / "routed.toml"
    path.write_text(textwrap.dedent("""\
        [env]
        left_veth_count = 2

        [cells.router]
        type = "Router"
        egress_connections = ["left1", "left2"]

        [[cells.router.routing_table]]
        prefix = "10.1.1.0/24"
        interface_id = 0

        [[cells.router.routing_table]]
        prefix = "10.1.2.0/24"
        interface_id = 1

        [cells.down]
        type = "Delay"
        delay = "10ms"

        [links]
        left1 = "right"
        left2 = "right"
        right = "down"
        down = "router"
        """))
    comp = compile_path(str(path))
    assert comp.ok, comp.diagnostics
    plan = build_plan(comp.program, comp.sources, default_registry())
    addresses = endpoint_addresses(plan, plan["channels"][0])  # upstream's, as `rattan run` gives them
    assert [addresses[n] >> 8 for n in ("left1", "left2")] == [0x0A0101, 0x0A0102]
    r = run(plan, None, ["right->left1:cbr:1Mbps", "right->left2:cbr:2Mbps"], "1s", 1)
    to1, to2 = r["flows"]
    assert (to1["sent_packets"], to2["sent_packets"]) == (84, 167)  # sent in [0, 1 s]
    assert (to1["received_packets"], to2["received_packets"]) == (83, 166)  # the last one is in the 10 ms delay
    assert to1["misdelivered_packets"] == to2["misdelivered_packets"] == 0
    got = {n: e["delivered_packets"] for n, e in r["endpoints"].items()}
    assert got == {"left1": 83, "left2": 166, "right": 0}  # each endpoint: its own flow, nothing else


def test_router_egress_without_a_route_gets_no_link():
    doc = ok("""\
        cells:
          r: {type: Router, egress_connections: [left, right], routing_table: [{prefix: 10.0.0.0/8, interface_id: 1}]}
        links: {left: r}
        """, "yaml")
    assert doc.chains == ["r[1] -> right", "left -> r"]


@pytest.mark.parametrize("body, code, fragment", [
    ('type = "Delay"\ndelay = "5ms"\ningress_round_up = "1d"\n', "RTN073", "ingress_round_up"),
    # DelayPerPacketCellBuildConfig is `rename_all = "snake_case"`: upstream refuses `Trace`/`Config`
    ('type = "DelayPerPacket"\nTrace = "d.toml"\n', "RTN071", "did you mean `trace`?"),
    ('type = "DelayPerPacket"\ntrace = "d.toml"\nconfig = {}\n', "RTN073", "not both"),
    ('type = "DelayPerPacket"\n', "RTN014", "needs `config`"),
    ('type = "DelayPerPacket"\ntrace = "d.csv"\n', "RTN051", ".json or .toml"),
    ('type = "Router"\negress_connections = ["left"]\nrouting_table = [{ prefix = "10.0.0.0/8", interface_id = 3 }]\n',
     "RTN073", "interface_id"),
    ('type = "Router"\negress_connections = ["left"]\nrouting_table = [{ prefix = "10.0.0.300", interface_id = 0 }]\n',
     "RTN073", "prefix"),
    # SimpleRoutingTable::add compares truncated prefixes: 10.1.2.3/8 is 10.0.0.0/8
    ('type = "Router"\negress_connections = ["left"]\nrouting_table = [{ prefix = "10.0.0.0/8", interface_id = 0 }, '
     '{ prefix = "10.1.2.3/8" }]\n', "RTN073", "two routes for the prefix 10.0.0.0/8"),
    ('type = "Delay"\n', "RTN014", "needs `delay`"),
    # `queue` is the tag of BwCellBuildConfig, `bandwidth` has no serde default: both required upstream
    ('type = "Bw"\nbandwidth = "10Mbps"\n', "RTN014", "needs `queue`"),
    ('type = "Bw"\nqueue = "DropTail"\n', "RTN014", "needs `bandwidth`"),
    ('type = "BwReplay"\ntrace = "lte.up"\n', "RTN014", "needs `queue`"),
    ('type = "Bw"\nbandwidth = "10Mbps"\nqueue = "Fifo"\n', "RTN073", '"DropTail"'),
    # jiff refuses a Duration of days or weeks (not fixed lengths) and negative spans
    ('type = "Delay"\ndelay = "1d"\n', "RTN073", "jiff"),
    ('type = "Delay"\ndelay = "2w"\n', "RTN073", "weeks"),
    ('type = "Delay"\ndelay = "P1D"\n', "RTN073", "days"),
    ('type = "Delay"\ndelay = "-5ms"\n', "RTN073", "negative"),
    ('type = "Bw"\nbandwidth = "1Mbps"\nqueue = "Red"\nqueue_config = { max_p = 2 }\n', "RTN073", "from 0 to 1"),
])
def test_unsupported_and_invalid_cells_are_reported(body, code, fragment):
    doc = cell_doc(body)
    d = doc.only(code)
    assert fragment in d.message + " ".join(d.help)
    # stays declared, so links to it add no noise; a router keeps its good routes and egress links
    assert doc.cells["c"].type.text == ("router" if 'type = "Router"' in body else "pass")


# ---- human-readable quantities --------------------------------------------------------
@pytest.mark.parametrize("text, bps", [
    ("12Mbps", 12_000_000), ("12 Mbps", 12_000_000), ("1Gbps", 10**9), ("1Gbps 200Mbps", 1_200_000_000),
    ("150.024kbps", 150_024), ("150.02456kbps", 150_024), ("1 Gbit/s", 10**9), ("100Kbps", 100_000),
    ("5bps", 5), ("0bps", 0),
    # human-bandwidth takes either case of each prefix, always in bits (`16mbps` is 16 Mbit/s upstream)
    ("16mbps", 16_000_000), ("36mbit/s", 36_000_000), ("96mb/s", 96_000_000), ("4gbps", 4 * 10**9),
    ("2tbps", 2 * 10**12), ("81kbit/s", 81_000), ("410Kb/s", 410_000),
    # human-bandwidth 0.2: `_` and whitespace anywhere in a number, parts without a space, `.` cut at the unit
    ("1_000 kbps", 10**6), ("1 2Mbps", 12_000_000), ("1Gbps200Mbps", 1_200_000_000), ("1.5bps", 1),
    ("2.5 Gbit/s", 2_500_000_000), ("1.Mbps", 10**6),
])
def test_rates(text, bps):
    doc = cell_doc(f'type = "Bw"\nbandwidth = "{text}"\nqueue = "Infinite"\n')
    assert doc.diags == []
    rate = doc.param("c", "rate")
    assert (rate.value, rate.dim) == (Fraction(bps), RATE)


@pytest.mark.parametrize("text, ns", [
    ("50ms", 50_000_000), ("1s", 10**9), ("1.5s", 1_500_000_000), ("100us", 100_000), ("100µs", 100_000),
    ("1s 500ms", 1_500_000_000), ("1s, 500ms", 1_500_000_000), ("2min", 120 * 10**9), ("250 msec", 250_000_000),
    ("7ns", 7), ("0ms", 0),
    # jiff's Span: ISO 8601, HH:MM:SS, the friendly format's long names and `,` as decimal separator
    ("PT0.05S", 50_000_000), ("pt1m", 60 * 10**9), ("PT1H30M", 5400 * 10**9), ("01:02:03", 3723 * 10**9),
    ("00:00:01.5", 1_500_000_000), ("1h 30m", 5400 * 10**9), ("1.5h", 5400 * 10**9), ("1,5s", 1_500_000_000),
    ("5 milliseconds", 5_000_000), ("0d 5s", 5 * 10**9), ("1 s", 10**9),
])
def test_times(text, ns):
    doc = cell_doc(f'type = "Delay"\ndelay = "{text}"\n')
    assert doc.diags == []
    delay = doc.param("c", "delay")
    assert (delay.value, delay.dim) == (Fraction(ns, 10**9), TIME)


@pytest.mark.parametrize("text, nbytes", [
    ("683.6 KiB", 700_006), ("1500B", 1500), ("1MB", 10**6), ("1MiB", 2**20), ("1500", 1500), ("64kib", 65536),
    ("2 KB", 2000),
])
def test_sizes(text, nbytes):
    doc = cell_doc(f'type = "TokenBucket"\nrate = "1Mbps"\nburst = "{text}"\n')
    assert doc.diags == []
    burst = doc.param("c", "burst")
    assert (burst.value, burst.dim) == (Fraction(nbytes * 8), SIZE)


@pytest.mark.parametrize("key, value, help_fragment", [
    ("bandwidth", '"12 Mbit"', ""),
    ("bandwidth", '"12Mbsp"', 'did you mean "12Mbps"?'),
    # upstream refuses byte rates and tc's units: the help gives the same rate in bits, never another
    ("bandwidth", '"10MBps"', 'write "80Mbps"'),
    ("bandwidth", '"1.5MB/s"', 'write "12Mbps"'),
    ("bandwidth", '"20mbit"', 'did you mean "20Mbps"?'),
    ("bandwidth", "12", 'write "12Mbps"'),
    ("bandwidth", '"fast"', ""),
    ("bandwidth", "true", ""),
])
def test_bad_rates_name_the_expected_form(key, value, help_fragment):
    doc = cell_doc(f'type = "Bw"\n{key} = {value}\nqueue = "Infinite"\n')
    d = doc.only("RTN073")
    assert 'a rate like "12Mbps"' in d.message
    assert help_fragment in " ".join(d.help)
    assert doc.line(d.span) == 3 and doc.text(d.span) == value


def test_bad_time_and_size():
    doc = load("""\
        [cells.d]
        type = "Delay"
        delay = 20
        [cells.t]
        type = "TokenBucket"
        rate = "1Mbps"
        burst = "10 parsecs"
        """)
    assert doc.codes == ["RTN073", "RTN073"]
    delay, burst = doc.diags
    assert 'a time like "50ms"' in delay.message and 'write "20ms"' in delay.help[0]
    assert "a size like" in burst.message and doc.line(burst.span) == 7


# ---- unknown keys, unknown types, bad values, malformed documents -----------------------
def test_unknown_key_is_a_warning_with_did_you_mean_at_its_line():
    """Upstream ignores the misspelt key; the Bw cell then has no `bandwidth`, which upstream refuses."""
    doc = load("""\
        [cells.up]
        type = "Bw"
        bandwith = "20Mbps"
        queue = "Infinite"
        """)
    d = doc.only("RTN075")
    assert d.severity == "warning"
    assert d.message == "unknown key `bandwith` in Bw cell `up` (upstream ignores it)"
    assert d.help[0] == "did you mean `bandwidth`?" and d.fix == "bandwidth"
    assert "upstream ignores this key" in d.help[-1]
    assert doc.line(d.span) == 3 and doc.text(d.span) == "bandwith"
    assert doc.only("RTN014").message == "Bw cell `up` needs `bandwidth`"


@pytest.mark.parametrize("fmt, text, key, line", [
    ("toml", '[env]\nmode = "Isolated"\nleft_veth_cnt = 2\n', "left_veth_cnt", 3),
    ("toml", '[cells.q]\ntype = "Bw"\nbandwidth = "1Mbps"\nqueue = "DropTail"\n'
             'queue_config = { packet_limt = 5 }\n', "packet_limt", 5),
    ("toml", '[devices.x]\ntype = "Shadow"\n', "devices", 1),
    ("toml", '[cells.t]\ntype = "TokenBucket"\nrate = "1Mbps"\nburst = "2KB"\npeakrate = "2Mbps"\n', "peakrate", 5),
    ("toml", '[resource]\ncores = [1]\n', "cores", 2),
    ("toml", '[comands]\nleft = ["ls"]\n', "comands", 1),
    ("yaml", "cells:\n  d:\n    type: Delay\n    delay: 5ms\n    dealy: 5ms\n", "dealy", 5),
    ("yaml", "http:\n  enabled: true\n", "enabled", 2),
])
def test_unknown_keys_everywhere(fmt, text, key, line):
    doc = load(text, fmt)
    assert not any(d.is_error for d in doc.diags), doc.diags
    d = [d for d in doc.diags if d.code == "RTN075"][0]
    assert f"`{key}`" in d.message
    assert d.help[0].startswith("did you mean")
    assert doc.line(d.span) == line and doc.text(d.span) == key


def test_unknown_cell_type_suggests_the_closest():
    doc = load('[cells.x]\ntype = "Dealy"\ndelay = "5ms"\n\n[links]\nleft = "x"\nx = "right"\n')
    d = doc.only("RTN072")
    assert d.message == 'unknown cell type "Dealy"' and d.help == ('did you mean "Delay"?',)
    assert doc.line(d.span) == 2
    assert doc.chains == ["left -> x -> right"]  # the cell stays, as `pass`


def test_bad_value_types_are_reported_not_raised():
    doc = load("""\
        cells = 5
        links = [1, 2]
        env = "Isolated"
        http = { enable = "yes", port = 70000 }
        """)
    assert doc.codes == ["RTN073"] * 5
    assert isinstance(doc.file, ast.File)


def test_malformed_toml_reports_the_library_position():
    doc = load('[cells.a]\ntype = "Delay"\ndelay = "5ms\n')
    d = doc.only("RTN070")
    assert d.message.startswith("malformed TOML:")
    assert doc.source.line_col(d.span.start)[0] == 3


def test_malformed_yaml_reports_the_library_position():
    doc = load("cells:\n  a:\n    type: Delay\n   delay: 5ms\n", "yaml")
    d = doc.only("RTN070")
    assert d.message.startswith("malformed YAML:")
    assert doc.source.line_col(d.span.start)[0] == 4


def test_yaml_duplicate_keys_are_malformed():
    doc = load("links:\n  left: a\n  left: b\n", "yaml")
    d = doc.only("RTN070")
    assert "duplicate key `left`" in d.message and doc.line(d.span) == 3


@pytest.mark.parametrize("fmt, text", [
    ("toml", ""), ("yaml", ""), ("yaml", "~"), ("yaml", "- a\n- b\n"), ("yaml", "just text"),
    ("toml", "\x00\x01\x02garbage"), ("yaml", "{{{{"), ("yaml", "a: &x [*x]\n"),
    ("yaml", "a: !!python/object:os.system {}\n"), ("yaml", "[" * 5000), ("toml", "a = " + "[" * 5000),
    ("yaml", "cells: {a: {type: [Bw]}, b: {type: Bw, bandwidth: {gbps: 1}}, c: 5}\nlinks: {a: {b: c}}\n"),
    ("yaml", "cells: {r: {type: Router, egress_connections: 5, routing_table: {a: 1}}}\n"),
    ("yaml", "cells: {d: {type: DelayPerPacket, Config: {delay: [1]}}}\n"),
    ("yaml", "env: {left_veth_count: -1, right_veth_count: 1.5, client_cores: [a]}\n"),
    ("yaml", "cells: {b: {type: Bw, bandwidth: 1e400, queue: CoDel, queue_config: [1]}}\n"),
    ("yaml", "cells: {l: {type: Loss, pattern: [.nan, .inf, 1e999]}}\n"),
    ("yaml", "a: &a {b: *a}\n"),
])
def test_garbage_never_raises(fmt, text):
    doc = load(text, fmt)
    assert isinstance(doc.file, ast.File)
    assert not any("internal error" in d.message for d in doc.diags), doc.diags


def test_random_mutations_never_raise():
    rng = random.Random(7)
    base = BROADBAND_TOML + '[cells.r]\ntype = "Router"\negress_connections = ["left"]\n' \
        'routing_table = [{ prefix = "10.0.0.0/8", interface_id = 0 }]\n'
    alphabet = '[]{}=",.#\n \'"abc019'
    for _ in range(300):
        chars = list(base)
        for _ in range(rng.randint(1, 6)):
            i = rng.randrange(len(chars))
            if rng.random() < 0.5:
                del chars[i]
            else:
                chars.insert(i, rng.choice(alphabet))
        for fmt in ("toml", "yaml"):
            doc = load("".join(chars), fmt)
            assert not any("internal error" in d.message for d in doc.diags)


# ---- endpoints, names, settings --------------------------------------------------------
def test_multi_veth_endpoints_are_named_like_upstream():
    doc = ok("""\
        [env]
        left_veth_count = 3
        right_veth_count = 1
        [links]
        left1 = "right"
        right = "left3"
        """)
    assert doc.endpoints == ["left1", "left2", "left3", "right"]
    assert doc.chains == ["left1 -> right", "right -> left3"]


def test_default_endpoints_without_env():
    assert ok('[links]\nleft = "right"\n').endpoints == ["left", "right"]


def test_cell_ids_become_identifiers_consistently():
    doc = ok("""\
        cells:
          up-1: {type: Delay, delay: 5ms}
          2nd: {type: Shadow}
        links: {left: up-1, up-1: 2nd, 2nd: right}
        """, "yaml", name="my-path.v2.yaml")
    assert sorted(doc.cells) == ["_2nd", "up_1"]
    assert doc.chains == ["left -> up_1 -> _2nd -> right"]
    assert doc.channel.name == "my_path_v2"


def test_channel_name_falls_back_to_main():
    assert ok("", name="<stdin>.toml").channel.name == "stdin"
    assert ok("", name="---.toml").channel.name == "main"


def test_chains_split_at_fan_in_and_keep_cycles():
    doc = ok("""\
        links:
          left: join
          right: join
          join: loop_a
          loop_a: loop_b
          loop_b: loop_a
        cells:
          join: {type: Shadow}
          loop_a: {type: Shadow}
          loop_b: {type: Shadow}
        """, "yaml")
    # `loop_a` has two ways in, so it starts its own chain; every link appears once
    assert doc.chains == ["left -> join", "right -> join", "join -> loop_a", "loop_a -> loop_b -> loop_a"]


def test_links_from_a_router_are_accepted_and_do_nothing():
    """Upstream accepts a [links] line from a router and never sends along it: a warning, no link."""
    doc = load("""\
        cells:
          r: {type: Router, egress_connections: [left], routing_table: [{prefix: 10.0.0.0/8, interface_id: 0}]}
        links: {right: r, r: right}
        """, "yaml")
    d = doc.only("RTN076")
    assert d.severity == "warning" and "egress_connections" in d.message and doc.line(d.span) == 3
    assert not any(x.is_error for x in doc.diags)
    assert "r -> right" not in doc.chains and doc.chains == ["r[0] -> left", "right -> r"]


def test_run_settings_pass_through_as_plain_values():
    doc = ok("""\
        [env]
        mode = "Compatible"
        left_veth_count = 1
        client_cores = [1]
        server_cores = [3]

        [http]
        enable = true
        port = 8087

        [general]
        packet_log = "run.log"
        packet_log_mode = "RawIP"

        [resource]
        cpu = [1]
        memory = 512

        [commands]
        left = ["iperf3", "-c", "10.0.0.1"]
        right = ["iperf3", "-s"]
        shell = "Bash"
        """)
    settings = dict(doc.file.settings)
    assert settings == {
        "env": {"mode": "Compatible", "left_veth_count": 1, "right_veth_count": 1, "client_cores": [1],
                "server_cores": [3]},
        "resource": {"cpu": [1], "memory": 512},
        "general": {"packet_log": "run.log", "packet_log_mode": "RawIP"},
        "http": {"enable": True, "port": 8087},
        "commands": {"left": ["iperf3", "-c", "10.0.0.1"], "right": ["iperf3", "-s"], "shell": "Bash"},
    }
    assert [k for k, _ in doc.file.settings] == ["env", "resource", "general", "http", "commands"]
    json.dumps(doc.file.settings)


def test_run_settings_have_upstream_defaults():
    """Documents that mean the same run give the same settings, written out or not."""
    bare = ok("[links]\nleft = \"right\"\n")
    spelled = ok('[env]\nmode = "Compatible"\nleft_veth_count = 1\n[http]\nport = 8086\n'
                 '[links]\nleft = "right"\n')
    assert bare.file.settings == spelled.file.settings == (
        ("env", {"mode": "Compatible", "left_veth_count": 1, "right_veth_count": 1}),
        ("http", {"enable": False, "port": 8086}))


def test_unsupported_run_settings():
    doc = load('[env]\nmode = "Container"\n')
    assert doc.codes == ["RTN074"]


def test_external_veths_pass_into_the_run_settings():
    """`left_external`/`right_external` are `Option<NetDevice>`, whose only variant is `Veth`."""
    doc = ok("env:\n  left_external: Veth\n  right_external: Veth\n", "yaml")
    env = dict(doc.file.settings)["env"]
    assert env["left_external"] == env["right_external"] == "Veth"
    assert load('[env]\nleft_external = "Tun"\n').codes == ["RTN073"]


@pytest.mark.parametrize("count, ok_", [(254, True), (255, False), (0, False)])
def test_veth_count_is_at_most_254(count, ok_):
    """rattan-env's VETH_COUNT_MAX: a side has 1 to 254 veth pairs (10.1.i.x, i <= 254)."""
    doc = load(f"[env]\nleft_veth_count = {count}\n")
    assert (doc.codes == []) == ok_, doc.diags
    if ok_:
        assert doc.endpoints[-2:] == ["left254", "right"]


def test_resource_cores_is_not_cpu():
    """`cores` is not a field of RattanResourceConfig: upstream ignores it, and it is not read as `cpu`."""
    doc = load("[resource]\ncores = [1, 2]\n")
    d = doc.only("RTN075")
    assert d.fix == "cpu" and "did you mean `cpu`?" in d.help
    assert "resource" not in dict(doc.file.settings)


def test_yaml_plain_scalars_follow_yaml_1_2():
    doc = ok("""\
        commands: {shell: Default, left: [no, "on"]}
        cells: {l: {type: Loss, pattern: [1e-3, 0.5]}}
        """, "yaml")
    assert dict(doc.file.settings)["commands"]["left"] == ["no", "on"]
    assert doc.cell("l") == "l: loss { pattern = [1e-3, 0.5] }"
    assert doc.param("l", "pattern").items[0].value == Fraction(1, 1000)


# ---- the document schema -----------------------------------------------------------------
# draft-07: the draft both yaml-language-server and Taplo read (tests/editors/test_schema_servers.py)
VALIDATOR = jsonschema.Draft7Validator(SCHEMA)


def test_schema_is_a_valid_draft_07_schema():
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("fmt", ["toml", "yaml"])
def test_schema_accepts_the_examples(fmt):
    path = EXAMPLES / f"broadband.{fmt}"
    if not path.exists():
        pytest.skip(f"{path} not present")
    data = tomllib.loads(path.read_text()) if fmt == "toml" else yaml.safe_load(path.read_text())
    assert list(VALIDATOR.iter_errors(data)) == []


SCHEMA_CASES = [
    (BROADBAND_TOML, True),
    ('[cells.c]\ntype = "Dealy"\n', False),
    ('[cells.c]\ntype = "Bw"\nbandwidth = "12 Mbit"\nqueue = "Infinite"\n', False),
    ('[cells.c]\ntype = "Bw"\nbandwidth = "1Mbps"\n', False),  # no `queue`
    ('[cells.c]\ntype = "Bw"\nqueue = "DropTail"\n', False),  # no `bandwidth`
    ('[cells.c]\ntype = "Bw"\nbandwidth = "1Mbps"\nqueue = "CoDel"\nqueue_config = { target = "5ms", mtu = 9000 }\n',
     True),
    ('[cells.c]\ntype = "Bw"\nbandwidth = "1Mbps"\nqueue = "Red"\nqueue_config = { min_th = 1000, max_th = 3000 }\n',
     True),
    ('[cells.c]\ntype = "TokenBucket"\nrate = "1Mbps"\nburst = "683.6 KiB"\nlimit = 0\n', True),
    ('[cells.c]\ntype = "TokenBucket"\nrate = "1Mbps"\nburst = "2KB"\npeak_rate = "2Mbps"\nmin_burst = "1500"\n',
     True),
    ('[cells.c]\ntype = "DelayPerPacket"\nConfig = { delay = { StaticDelayPerPacketConfig = { delay = "5ms" } } }\n',
     False),
    ('[cells.c]\ntype = "DelayPerPacket"\ntrace = "d.json"\nconfig = {}\n', False),
    ('[env]\nleft_veth_count = 2\n[links]\nleft1 = "right"\n', True),
    ('[env]\nleft_veth_count = 255\n', False),
    ('[env]\nmode = "Container"\n', False),
]


@pytest.mark.parametrize("text, valid", SCHEMA_CASES)
def test_schema_agrees_with_the_front_end(text, valid):
    schema_ok = not list(VALIDATOR.iter_errors(tomllib.loads(text)))
    # the schema describes the keys upstream reads: an ignored key (RTN075) is outside it too
    front_end_ok = not any(d.is_error or d.code == "RTN075" for d in load(text).diags)
    assert schema_ok == front_end_ok == valid


@pytest.mark.parametrize("kind, samples", [
    ("rate", ["12Mbps", "12 Mbps", "1Gbps 200Mbps", "150.024kbps", "1 Gbit/s", "12 Mbit", "12mbps", "12", "Mbps",
              "10MBps", "20mbit", "4tb/s", "1_000 kbps", "1Gbps200Mbps", "1Gbps, 2Mbps", ".5Mbps"]),
    ("time", ["50ms", "1.5s", "1s 500ms", "100µs", "100\u03bcs", "2min", "5", "5 parsecs", "ms", "1.s",
              "PT0.05S", "01:02:03", "1h 30m", "5 milliseconds", "1s,500ms", "5mx", "1 .5s", "1.5 s", "5ms "]),
    ("size", ["683.6 KiB", "1500B", "1500", "1MB", "64kib", "10 parsecs", "B", "1.5.5KB"]),
])
def test_schema_patterns_match_the_parsers(kind, samples):
    quantity = jsonschema.Draft7Validator(SCHEMA["$defs"][kind])  # its pattern, and the readable failure
    cells = {
        "rate": lambda s: f'type = "Bw"\nbandwidth = "{s}"\nqueue = "Infinite"\n',
        "time": lambda s: f'type = "Delay"\ndelay = "{s}"\n',
        "size": lambda s: f'type = "TokenBucket"\nrate = "1Mbps"\nburst = "{s}"\n',
    }
    for s in samples:
        accepted = cell_doc(cells[kind](s)).diags == []
        assert quantity.is_valid(s) == accepted, s


# ---- issue 12: upstream's meaning, field by field --------------------------------------------
def warnings_of(doc: Loaded, code: str) -> list:
    return [d for d in doc.diags if d.code == code and d.severity == "warning"]


def test_token_bucket_peakrate_and_minburst_are_ignored_so_there_is_no_peak_bucket():
    """config.example.toml writes `peakrate`/`minburst`; TokenBucketCellConfig has `peak_rate`/`min_burst`."""
    doc = cell_doc('type = "TokenBucket"\nrate = "10Mbps"\nburst = "16KiB"\npeakrate = "20Mbps"\nminburst = "1500"\n')
    assert doc.cell("c") == "c: token_bucket { rate = 10Mbps, burst = 16KiB, limit = unlimited }"
    fixes = {d.fix for d in warnings_of(doc, "RTN075")}
    assert fixes == {"peak_rate", "min_burst"} and not any(d.is_error for d in doc.diags)


def test_token_bucket_without_buckets_passes_everything():
    doc = cell_doc('type = "TokenBucket"\nlimit = 1000\n')
    assert doc.cell("c") == "c: pass"
    (d,) = warnings_of(doc, "RTN076")
    assert "passes every packet" in d.message


@pytest.mark.parametrize("body, expected, lone", [
    ('rate = "1Mbps"\n', "c: pass", "rate"),
    ('burst = "2KB"\n', "c: pass", "burst"),
    ('rate = "1Mbps"\nburst = "2KB"\nmin_burst = "1500"\n', "c: token_bucket { rate = 1Mbps, burst = 2KB, limit = unlimited }",
     "min_burst"),
    # only the peak bucket: it alone shapes
    ('peak_rate = "1Mbps"\nmin_burst = "1500"\n', "c: token_bucket { rate = 1Mbps, burst = 1.5KB, limit = unlimited }",
     None),
])
def test_token_bucket_lone_values_are_ignored_as_upstream_does(body, expected, lone):
    doc = cell_doc('type = "TokenBucket"\n' + body)
    assert doc.cell("c") == expected
    assert not any(d.is_error for d in doc.diags)
    if lone:
        assert any(f"`{lone}` without" in d.message for d in warnings_of(doc, "RTN076")), doc.diags


def test_router_drop_routes_longest_prefix_and_only_ipv4():
    doc = ok("""\
        [cells.r]
        type = "Router"
        egress_connections = ["left"]
        routing_table = [{ prefix = "10.0.0.0/8", interface_id = 0 }, { prefix = "10.1.0.0/16" }]
        [links]
        right = "r"
        """)
    assert doc.cell("r") == ('r: router { routes = [route { prefix = "10.0.0.0/8", port = 0 }, '
                             'route { prefix = "10.1.0.0/16" }], only_ipv4 = true }')


def test_router_drop_route_carves_a_hole_in_a_sim(tmp_path):
    """Compiled and simulated: the /24 drop route inside the /16 route drops only its flow."""
    from rattan.compiler import compile_path
    from rattan.plan import build_plan
    from rattan.registry import default_registry
    from rattan.runtime.sim import run
    path = tmp_path / "hole.toml"
    path.write_text(textwrap.dedent("""\
        [env]
        left_veth_count = 2
        [cells.r]
        type = "Router"
        egress_connections = ["left1", "left2"]
        routing_table = [{ prefix = "10.1.0.0/16", interface_id = 0 }, { prefix = "10.1.2.0/24" }]
        [links]
        left1 = "right"
        left2 = "right"
        right = "r"
        """))
    comp = compile_path(str(path))
    assert comp.ok, comp.diagnostics
    plan = build_plan(comp.program, comp.sources, default_registry())
    r = run(plan, None, ["right->left1:cbr:1Mbps", "right->left2:cbr:1Mbps"], "1s", 1)
    to1, to2 = r["flows"]
    assert to1["received_packets"] == to1["sent_packets"] > 0
    assert to2["received_packets"] == 0 and to2["sent_packets"] > 0


@pytest.mark.parametrize("queue, config, expected", [
    ("DropTail", "{ packet_limit = 0 }", "droptail { packets = 0 }"),  # holds nothing: passes when idle
    ("DropHead", "{ byte_limit = 0 }", "drophead { bytes = 0B }"),
    ("CoDel", "{ mtu = 9000 }", "codel { mtu = 9KB, packets = unlimited }"),
    ("CoDel", "{}", "codel { packets = unlimited }"),
    ("DropTail", '{ byte_limit = 9000, bw_type = "LinkLayer" }', "droptail { bytes = 9KB, overhead = 38B }"),
    ("DropTail", '{ packet_limit = 10, bw_type = "NetworkLayer" }', "droptail { packets = 10 }"),
    ("Red", "{ min_th = 3000, max_th = 9000, max_p = 0.1, w_q = 0.01, adaptive = true, packet_limit = 100, "
            "pkt_tx_time = 60.0, seed = 7 }",
     "red { min = 3KB, max = 9KB, probability = 0.1, weight = 0.01, adaptive = true, packets = 100, "
     "packet_time = 60us, seed = 7 }"),
    # RedQueueConfig::default(): min_th 7500, max_th 22500, max_p 0.02, pkt_tx_time 120 µs, seed 42, unbounded
    ("Red", "{}", "red { min = 7.5KB, max = 22.5KB, probability = 0.02, packet_time = 120us, seed = 42, "
                  "packets = unlimited }"),
    ("Pie", "{ ref_del = 0.02, max_burst = 100.0, t_update = { secs = 0, nanos = 30000000 }, byte_limit = 30000 }",
     "pie { seed = 42, target = 20ms, max_burst = 100ms, tupdate = 30ms, bytes = 30KB }"),
])
def test_queues_as_upstream_configures_them(queue, config, expected):
    doc = cell_doc(f'type = "Bw"\nbandwidth = "1Mbps"\nqueue = "{queue}"\nqueue_config = {config}\n')
    assert doc.diags == []
    assert doc.cell("c") == f"c: bw {{ rate = 1Mbps, queue = {expected} }}"


def test_replay_cells_start_at_the_first_packet():
    for body, rtn in (('type = "BwReplay"\ntrace = "a.up"\nqueue = "Infinite"\n', "bw_trace"),
                      ('type = "DelayReplay"\ntrace = "d.json"\n', "delay_trace"),
                      ('type = "LossReplay"\ntrace = "l.json"\n', "loss_trace")):
        doc = cell_doc(body)
        assert doc.cells["c"].type.text == rtn
        assert show(doc.param("c", "start")) == "first_packet"


def test_loss_probabilities_outside_0_1_are_clamped_with_a_warning():
    doc = cell_doc('type = "Loss"\npattern = [1.5, -0.2, 0.3]\n')
    assert doc.cell("c") == "c: loss { pattern = [1, 0, 0.3] }"
    assert len(warnings_of(doc, "RTN076")) == 2 and not any(d.is_error for d in doc.diags)


def test_unlinked_custom_cell_is_skipped_and_a_linked_one_refused():
    doc = load('[cells.c]\ntype = "Custom"\n[cells.d]\ntype = "Delay"\ndelay = "1ms"\n'
               '[links]\nleft = "d"\nd = "right"\n')
    assert "c" not in doc.cells and not any(d.is_error for d in doc.diags)
    assert "left out" in doc.only("RTN076").message
    doc = load('[cells.c]\ntype = "Custom"\n[links]\nleft = "c"\nc = "right"\n')
    assert "linked" in doc.only("RTN074").message


def test_delay_per_packet_capitalised_keys_are_refused_with_the_snake_case_name():
    doc = cell_doc('type = "DelayPerPacket"\n[cells.c.Config.delay.StaticDelayPerPacketConfig]\ndelay = "10ms"\n')
    d = doc.only("RTN071")
    assert d.fix == "config" and d.severity == "error"


def test_unknown_sections_and_keys_are_warnings_that_say_what_upstream_does():
    doc = load('[devices.x]\ntype = "Shadow"\n[http]\nenabled = true\n')
    assert {d.code for d in doc.diags} == {"RTN075"}
    devices, enabled = doc.diags
    assert devices.fix == "cells" and enabled.fix == "enable"
    assert all("upstream ignores" in d.message for d in doc.diags)


def test_a_relative_trace_path_warns_when_upstream_would_read_another_file(tmp_path, monkeypatch):
    (tmp_path / "doc").mkdir()
    (tmp_path / "doc" / "lte.up").write_text("1\n")
    doc_path = tmp_path / "doc" / "x.toml"
    monkeypatch.chdir(tmp_path)  # upstream would read ./lte.up here: missing
    text = '[cells.c]\ntype = "BwReplay"\ntrace = "lte.up"\nqueue = "Infinite"\n'
    doc = Loaded(text, "toml", str(doc_path))
    doc.sources = SourceMap()
    doc.source = doc.sources.add(str(doc_path), text, str(doc_path))
    doc.sink = Sink()
    doc.file = load_document(doc.source, doc.sink, "toml")
    d = doc.only("RTN076")
    assert "does not exist" in d.message and doc.text(d.span) == '"lte.up"'
    monkeypatch.chdir(tmp_path / "doc")  # the same file both ways: nothing to say
    sink = Sink()
    load_document(doc.source, sink, "toml")
    assert [x for x in sink.sorted() if x.code == "RTN076"] == []


def test_a_toml_file_with_another_extension_is_read_as_toml():
    from rattan.compiler import compile_text
    text = '[cells.d]\ntype = "Delay"\ndelay = "5ms"\n[links]\nleft = "d"\nd = "right"\n'
    comp = compile_text(text, "rattan.conf")
    assert comp.ok, comp.diagnostics
    assert comp.program.units[0].file.format == "toml"
    comp = compile_text("channel c { endpoints a, b\n a -> b }\n", "path.conf")  # not TOML: .rtn
    assert comp.program.units[0].file.format == "rtn"


def test_delay_per_packet_config_maps_to_delay_per_packet():
    doc = cell_doc('type = "DelayPerPacket"\n[cells.c.config.delay.NormalizedDelayPerPacketConfig]\n'
                   'mean = "10ms"\nstd_dev = "5ms"\nlower_bound = "1ms"\nupper_bound = "30ms"\ncount = 10\nseed = 3\n')
    assert doc.diags == []
    assert doc.cell("c") == ("c: delay_per_packet { model = [normal { mean = 10ms, std_dev = 5ms, lower_bound = 1ms, "
                             "upper_bound = 30ms, count = 10, seed = 3 }], repeat = 1 }")


def test_delay_per_packet_trace_file_with_a_repeated_pattern(tmp_path):
    (tmp_path / "m.toml").write_text(textwrap.dedent("""\
        [RepeatedDelayPerPacketPatternConfig]
        count = 0
        [[RepeatedDelayPerPacketPatternConfig.pattern]]
        StaticDelayPerPacketConfig = { delay = "5ms", count = 2 }
        [[RepeatedDelayPerPacketPatternConfig.pattern]]
        LogNormalizedDelayPerPacketConfig = { mean = "8ms", std_dev = "1ms", count = 4 }
        """))
    path = tmp_path / "d.toml"
    text = '[cells.c]\ntype = "DelayPerPacket"\ntrace = "m.toml"\n'
    sources = SourceMap()
    src = sources.add(str(path), text, str(path))
    sink = Sink()
    file = load_document(src, sink, "toml")
    assert [d for d in sink.sorted() if d.is_error] == []
    (ch,) = file.body
    (c,) = [s for s in ch.body if isinstance(s, ast.CellDecl)]
    assert show_cell(c) == ("c: delay_per_packet { model = [static { delay = 5ms, count = 2 }, lognormal { mean = 8ms, "
                            "std_dev = 1ms, lower_bound = 0s, count = 4, seed = 42 }], repeat = 0 }")


def test_delay_per_packet_model_ends_after_count_packets_in_a_sim(tmp_path):
    """Upstream drops every packet after a finite model ends: 3 packets pass, the rest are dropped."""
    from rattan.compiler import compile_path
    from rattan.plan import build_plan
    from rattan.registry import default_registry
    from rattan.runtime.sim import run
    path = tmp_path / "end.toml"
    path.write_text('[cells.c]\ntype = "DelayPerPacket"\n'
                    '[cells.c.config.delay.StaticDelayPerPacketConfig]\ndelay = "10ms"\ncount = 3\n'
                    '[links]\nleft = "c"\nc = "right"\n')
    comp = compile_path(str(path))
    assert comp.ok, comp.diagnostics
    r = run(build_plan(comp.program, comp.sources, default_registry()), None, ["left->right:cbr:1Mbps"], "1s", 1)
    (flow,) = r["flows"]
    assert flow["sent_packets"] > 10 and flow["received_packets"] == 3


def test_a_yaml_null_bandwidth_is_an_unlimited_link():
    """`bandwidth: ~` is `Option<Bandwidth>` None upstream: present, and unlimited."""
    doc = load("cells:\n  c: {type: Bw, bandwidth: ~, queue: Infinite}\n", "yaml")
    assert doc.diags == []
    assert doc.cell("c") == "c: pass"
