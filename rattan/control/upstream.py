"""Upstream Rattan's HTTP control API on our control server, so that scripts written for upstream work.

Upstream (stack-rs/rattan, `rattan-core/src/control/http.rs`; routes and status codes as its
`rattan-core/tests/integration/http.rs` uses them) serves three routes:

- `POST /config/<id>`: a JSON body that upstream deserializes (serde) into the cell's own config
  struct (`BwCellConfig`, `DelayCellConfig`, `LossCellConfig`, `TokenBucketCellConfig`, ...) and hands
  to the cell; 200 with an empty body, 400 `{"error": ...}` when the body does not fit the cell,
  404 for an unknown id.
- `GET /state`: `{"state": "Running"}` (our /state document carries that key too).
- `POST /notify`: `"Start"` or `"FirstPacket"`.

Here each upstream body is translated, field by field, into a change of our cell's runtime
parameters (its schema's `x-runtime`), checked in full before anything changes and applied at one
instant by `ControlAPI.apply`. `<id>` is the upstream `[cells.<id>]` name, or the name the front end
gave it (`identifier()`: `up-1` -> `up_1`). A field upstream ignores (serde ignores unknown keys) is
ignored here too, with a warning in the response; a field upstream accepts that our engine cannot
change while running is a 400 naming it, never silently dropped.
"""
from __future__ import annotations

import json
from typing import Any, Callable

from ..diagnostics import did_you_mean
from .api import Response, Target, _error, _not_allowed

# Our cell type -> the upstream `type` tag whose body its route takes.
UPSTREAM_TYPE = {"bw": "Bw", "bw_trace": "BwReplay", "delay": "Delay", "delay_trace": "DelayReplay",
                 "loss": "Loss", "loss_trace": "LossReplay", "token_bucket": "TokenBucket",
                 "delay_per_packet": "DelayPerPacket", "router": "Router", "spy": "Spy"}
LINK_LAYER_OVERHEAD = 38  # bytes of upstream's BwType::LinkLayer (preamble+SFD, header, FCS, gap)
_BW_TYPES = {"NetworkLayer": 0, "LinkLayer": LINK_LAYER_OVERHEAD}


def cell_time(text: str) -> int | None:
    """Nanoseconds from a time as upstream's cells read it (a jiff span: `50ms`, `1s 500ms`, `PT0.05S`),
    with the front end's reader (`parse_cell_time`; the humantime `parse_time` where it has none)."""
    from ..frontends import upstream
    return getattr(upstream, "parse_cell_time", upstream.parse_time)(text)


class _Body:
    """One upstream body being translated: what it changes, what is wrong, what is ignored."""

    def __init__(self, doc: dict, fields: tuple[str, ...], struct: str) -> None:
        self.doc, self.fields, self.struct = doc, fields, struct
        self.changes: dict[str, Any] = {}
        self.errors: list[dict] = []
        self.warnings: list[str] = []
        for key in doc:
            if key not in fields:  # serde ignores unknown keys; say so
                hint = did_you_mean(key, fields)
                self.warnings.append(f"`{key}` is not a field of upstream's {struct} ({', '.join(fields)}); "
                                     f"upstream ignores it, and so does rattan" + (f"; did you mean `{hint}`?"
                                                                                  if hint else ""))

    def error(self, field: str, message: str) -> None:
        self.errors.append({"field": field, "message": message})

    def given(self, key: str) -> bool:
        """Present and not null (serde reads null as None for an Option)."""
        return self.doc.get(key) is not None

    def required(self, key: str) -> bool:
        if key not in self.doc:
            self.error(key, f"missing field `{key}`: upstream's {self.struct} requires it")
            return False
        return True

    def quantity(self, key: str, parse: Callable[[str], int | None], what: str, example: str) -> int | None:
        v = self.doc[key]
        if not isinstance(v, str):
            self.error(key, f"invalid type: expected {what} as a string like \"{example}\", got {json.dumps(v)}")
            return None
        n = parse(v)
        if n is None:
            self.error(key, f"`{v}` is not {what} upstream reads (e.g. \"{example}\")")
        return n

    def not_at_run_time(self, key: str, why: str = "") -> None:
        self.error(key, f"`{key}` cannot change while running in rattan{why}; the cell keeps what the file "
                        f"gave it. Change it in the file, or give only the fields that can change")

    def bw_type(self, key: str = "bw_type") -> None:
        v = self.doc[key]
        if not isinstance(v, str) or v not in _BW_TYPES:
            self.error(key, f"unknown variant {json.dumps(v)}, expected `NetworkLayer` or `LinkLayer`")
        else:
            self.changes["overhead"] = _BW_TYPES[v]


def _bw(b: _Body, cell: dict) -> None:
    """BwCellConfig (cells/bandwidth/mod.rs): `bandwidth` (human-bandwidth string; required by serde,
    null allowed), `queue_config`, `bw_type`; at least one of them set."""
    from ..frontends.upstream import parse_rate
    if b.required("bandwidth") and b.given("bandwidth"):
        rate = b.quantity("bandwidth", parse_rate, "a bandwidth", "100Mbps")
        if rate is not None:
            b.changes["rate"] = rate
    if b.given("queue_config"):
        b.not_at_run_time("queue_config", " (the queue's limits are fixed when the run starts)")
    if b.given("bw_type"):
        b.bw_type()
    if not b.errors and not any(b.given(k) for k in ("bandwidth", "queue_config", "bw_type")):
        b.error("bandwidth", "At least one of bandwidth, queue_config and bw_type should be set")


def _bw_replay(b: _Body, cell: dict) -> None:
    """BwReplayCellConfig: `trace_config`, `queue_config`, `bw_type`, each optional, one set."""
    if b.given("trace_config"):
        b.not_at_run_time("trace_config", " (a bw_trace replays the trace it was given)")
    if b.given("queue_config"):
        b.not_at_run_time("queue_config", " (the queue's limits are fixed when the run starts)")
    if b.given("bw_type"):
        b.bw_type()
    if not b.errors and not any(b.given(k) for k in ("trace_config", "queue_config", "bw_type")):
        b.error("trace_config", "At least one of bandwidth, queue_config and bw_type should be set")


def _delay(b: _Body, cell: dict) -> None:
    """DelayCellConfig (cells/delay.rs): `delay` (a jiff span string, required), `ingress_round_up`."""
    if b.required("delay"):
        ns = b.quantity("delay", cell_time, "a duration", "50ms")
        if ns is not None:
            b.changes["delay"] = ns
    if b.given("ingress_round_up"):
        b.not_at_run_time("ingress_round_up", " (rattan's delay has no ingress rounding)")


def _replay(b: _Body, cell: dict) -> None:
    """DelayReplayCellConfig / LossReplayCellConfig: `trace_config`, required."""
    if b.required("trace_config"):
        b.not_at_run_time("trace_config", f" (a {cell['type']} replays the trace it was given)")


def _loss(b: _Body, cell: dict) -> None:
    """LossCellConfig (cells/loss.rs): `pattern`, a list of probabilities, required. Upstream drops a
    packet when a uniform draw in [0, 1) is below the entry, so above 1 always drops and 0 or below
    never does; one probability (or several equal ones) is Bernoulli loss, our `rate`."""
    if not b.required("pattern"):
        return
    pattern = b.doc["pattern"]
    if not isinstance(pattern, list) or any(isinstance(p, bool) or not isinstance(p, (int, float))
                                            for p in pattern):
        b.error("pattern", f"invalid type: expected a list of numbers like [0.01], got {json.dumps(pattern)}")
        return
    clamped = [min(1.0, max(0.0, float(p))) for p in pattern] or [0.0]  # [] loses nothing upstream
    if any(p != clamped[0] for p in clamped):
        b.error("pattern", f"a pattern of several different probabilities ({json.dumps(pattern)}) cannot be "
                           f"set while running in rattan; one probability (Bernoulli loss) can, e.g. [0.01]")
        return
    if any(float(p) != c for p, c in zip(pattern, clamped)):
        b.warnings.append(f"`pattern` {json.dumps(pattern)}: a probability above 1 always drops and one at or "
                          f"below 0 never does (as upstream); set as {clamped[0]:g}")
    b.changes["rate"] = clamped[0]


def _token_bucket(b: _Body, cell: dict) -> None:
    """TokenBucketCellConfig (cells/token_bucket/mod.rs): `limit` (bytes), `rate`, `burst`, peak rate and
    min burst, all optional; a pair is given together or not at all, and none is 0. Upstream replaces
    the whole configuration: a pair left out removes its bucket."""
    from ..frontends.upstream import parse_rate, parse_size
    config = cell["config"]
    values: dict[str, int | None] = {}
    for key, parse, what, example in (("rate", parse_rate, "a bandwidth", "10Mbps"),
                                      ("burst", parse_size, "a size", "16KiB"),
                                      ("peak_rate", parse_rate, "a bandwidth", "20Mbps"),
                                      ("min_burst", parse_size, "a size", "1500B")):
        # a18829c spells the peak pair peak_rate/min_burst; earlier releases peakrate/minburst
        spelled = next((k for k in (key, key.replace("_", "")) if b.given(k)), None)
        values[key] = b.quantity(spelled, parse, what, example) if spelled else None
        if spelled and values[key] is None:
            return
    if b.given("limit"):
        limit = b.doc["limit"]
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            b.error("limit", f"invalid type: expected a byte count (an integer, 0 or more), got {json.dumps(limit)}")
            return
        if limit != config.get("limit"):
            b.not_at_run_time("limit", f" (the shaping queue is {config.get('limit')} bytes)")
    for a, c in (("rate", "burst"), ("peak_rate", "min_burst")):
        if (values[a] is None) != (values[c] is None):
            b.error(a if values[a] is None else c, f"{a} and {c} should be provided together")
        for k in (a, c):
            if values[k] == 0:
                b.error(k, f"{k} must be greater than 0")
    if b.errors:
        return
    if values["rate"] is None:
        b.error("rate", "without `rate` and `burst` upstream removes the bucket; rattan cannot remove it "
                        "while running: give `rate` and `burst`")
        return
    b.changes["rate"], b.changes["burst"] = values["rate"], values["burst"]
    if values["peak_rate"] is None:
        if config.get("peak_rate"):
            b.error("peak_rate", "without the peak pair upstream removes the peak bucket; rattan cannot "
                                 "remove it while running: give `peak_rate` and `min_burst`")
        return
    if values["min_burst"] != config.get("min_burst"):
        b.not_at_run_time("min_burst", f" (the peak bucket is {config.get('min_burst')} bytes)")
        return
    b.changes["peak_rate"] = values["peak_rate"]


# upstream tag -> (its config struct, its fields, the translation)
BODIES: dict[str, tuple[str, tuple[str, ...], Callable[[_Body, dict], None]]] = {
    "Bw": ("BwCellConfig", ("bandwidth", "queue_config", "bw_type"), _bw),
    "BwReplay": ("BwReplayCellConfig", ("trace_config", "queue_config", "bw_type"), _bw_replay),
    "Delay": ("DelayCellConfig", ("delay", "ingress_round_up"), _delay),
    "DelayReplay": ("DelayReplayCellConfig", ("trace_config", "ingress_round_up"), _replay),
    "Loss": ("LossCellConfig", ("pattern",), _loss),
    "LossReplay": ("LossReplayCellConfig", ("trace_config",), _replay),
    "TokenBucket": ("TokenBucketCellConfig", ("limit", "rate", "burst", "peak_rate", "min_burst",
                                              "peakrate", "minburst"), _token_bucket),
}


def translate(cell: dict, doc: Any) -> tuple[dict, list[dict], list[str]]:
    """(our runtime changes in the plan's units, errors naming fields, warnings) for an upstream
    config body posted to `cell` (a plan cell: its type and config)."""
    tag = UPSTREAM_TYPE.get(cell["type"])
    if tag not in BODIES:
        return {}, [{"field": "", "message": f"`{cell['name']}` is a {cell['type']} cell, which upstream's "
                     f"config route cannot change here" + (f" (upstream's {tag})" if tag else "")}], []
    struct, fields, fill = BODIES[tag]
    if not isinstance(doc, dict):
        return {}, [{"field": "", "message": f"invalid type: expected upstream's {struct} (a JSON object "
                                             f"with {', '.join(fields)}), got {json.dumps(doc)[:60]}"}], []
    body = _Body(doc, fields, struct)
    fill(body, cell)
    return body.changes, body.errors, body.warnings


def resolve(api, raw_id: str, query: dict) -> tuple[Target | None, str | None, Response | None]:
    """The target and cell of upstream id `raw_id`: a cell of that name, or of the name the front
    end made of it; `?channel=` chooses when several channels have one, `?instance=` the instance."""
    from ..frontends.upstream import identifier
    wanted = {raw_id, identifier(raw_id)}
    found = [(ch, name) for ch, name in api._cells if name in wanted]
    if "channel" in query:
        found = [(ch, name) for ch, name in found if ch == query["channel"][0]]
    if not found:
        known = sorted({name for _, name in api._cells if "." not in name})
        return None, None, _error(404, f'Unknown interface ID "{raw_id}"; cells: {", ".join(known)}')
    if len({ch for ch, _ in found}) > 1:
        return None, None, _error(400, f"`{raw_id}` names a cell in several channels "
                                       f"({', '.join(sorted({ch for ch, _ in found}))}): add ?channel=NAME",
                                  [{"field": "channel", "message": "several channels have this cell"}])
    channel, name = found[0]
    target, problem = api._target(channel, name, query)
    return target, name, problem


def config_cell(api, raw_id: str, query: dict, method: str, body: bytes | None) -> Response:
    """`POST /config/<id>`: an upstream config body applied to the cell, or 400 naming the field."""
    if method != "POST":
        return _not_allowed(method, ("POST",))
    target, name, problem = resolve(api, raw_id, query)
    if problem:
        return problem
    try:
        doc = json.loads(body or b"")
    except (ValueError, UnicodeDecodeError) as e:
        return _error(400, f"Serde error: the body is not JSON: {e}")
    cell = api._cells[(target.channel["name"], name)]
    changes, errors, warnings = translate(cell, doc)
    if errors:
        return _error(400, "nothing was changed: " + "; ".join(
            f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors), errors)
    r = api.apply(target, name, changes)
    if r.status != 200:  # our own checks (schema bounds): still the client's fault, as upstream says 400
        return Response(400, r.body, r.headers)
    return Response(200, {**r.body, "cell": name, "upstream_type": UPSTREAM_TYPE[cell["type"]],
                          "warnings": warnings})


def notify(api, method: str, body: bytes | None) -> Response:
    """`POST /notify` (RattanNotify): our runs have started by the time the API listens, so `"Start"`
    gets upstream's answer for a running instance; `"FirstPacket"` changes nothing here (a
    `first_packet` trace starts at its own first packet)."""
    if method != "POST":
        return _not_allowed(method, ("POST",))
    try:
        doc = json.loads(body or b"")
    except (ValueError, UnicodeDecodeError) as e:
        return _error(400, f"Serde error: the body is not JSON: {e}")
    if doc == "Start":
        return _error(400, "Rattan core error: Failed to send notify, Rattan state is Running instead of "
                           "Spawned when sending Start notify", [{"field": "", "message": "the run has started"}])
    if doc == "FirstPacket":
        return Response(200, {"warnings": ["rattan starts each first_packet trace at that cell's own first "
                                           "packet; the notify changes nothing"]})
    return _error(400, f"Serde error: unknown variant {json.dumps(doc)[:40]}, expected `Start` or `FirstPacket`",
                  [{"field": "", "message": "expected \"Start\" or \"FirstPacket\""}])
