"""The OpenAPI 3.1 document of a run's control API, generated from the cells' schemas: a path per cell
of the run, each change body made of the runtime parameters of that cell's type."""
from __future__ import annotations

from typing import Any

from .api import _UNIT_EXAMPLE, quantity_pattern

_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict:
    text = {400: "the body is not JSON", 404: "no such channel or cell", 405: "method not allowed here",
            413: "the body is too large",
            422: "a field is wrong; `errors` names it, and nothing was changed"}
    return {str(c): _json(_ERROR, text[c]) for c in codes}


def _value_schema(name: str, prop: dict) -> dict:
    """What a change request may give for one runtime parameter."""
    doc = prop.get("description", "")
    if "enum" in prop:
        return {"enum": list(prop["enum"]), "description": doc}
    number: dict[str, Any] = {"type": prop.get("type", "number")}
    for k in ("minimum", "maximum"):
        if k in prop:
            number[k] = prop[k]
    unit = prop.get("x-unit")
    if unit in _UNIT_EXAMPLE:
        unit_doc = {"rate": "bit/s", "time": "ns", "size": "bytes", "probability": "a fraction from 0 to 1"}[unit]
        return {"oneOf": [number, {"type": "string", "pattern": quantity_pattern(unit),
                                   "examples": [_UNIT_EXAMPLE[unit]]}],
                "description": f"{doc} A number in {unit_doc}, or a quantity such as \"{_UNIT_EXAMPLE[unit]}\"."}
    return {**number, "description": doc}


def _change_schema(cell_type, props: dict[str, dict]) -> dict:
    properties = {k: _value_schema(k, v) for k, v in props.items()}
    properties["at"] = {"oneOf": [{"type": "integer", "minimum": 0},
                                  {"type": "string", "pattern": quantity_pattern("time"), "examples": ["12s"]}],
                        "description": "Apply at this logical time of the run (ns, or a time such as \"12s\"), "
                                       "not before now; without it, at once."}
    return {"type": "object", "properties": properties, "additionalProperties": False, "minProperties": 1,
            "description": f"A change of a `{cell_type.name}` cell: its runtime parameters, all applied at the "
                           f"same logical instant, in place (queued packets are kept)."}


_COUNTERS = {"type": "object", "required": ["in_packets", "out_packets", "queued_packets", "dropped_packets"],
             "properties": {k: {"type": "integer", "minimum": 0} for k in (
                 "time_ns", "in_packets", "in_bytes", "out_packets", "out_bytes", "queued_packets",
                 "queued_bytes", "dropped_packets", "dropped_bytes", "created_packets", "modified_packets")}
             | {"dropped_by_reason": {"type": "object", "additionalProperties": {"type": "integer"}}}
             | {k: {"type": ["integer", "null"], "minimum": 0,
                    "description": f"logical time (ns) of the cell's {w} frame out; null before any"}
                for k, w in (("first_out_ns", "first"), ("last_out_ns", "last"))}}


def document(api) -> dict:
    paths: dict[str, Any] = {
        "/openapi.json": {"get": {"operationId": "openapi", "summary": "This document",
                                  "responses": {"200": {"description": "the OpenAPI document",
                                                        "content": {"application/json": {"schema": {"type": "object"}}}}}}},
        "/state": {"get": {"operationId": "state", "summary": "The run: its clock, logical time and instances",
                           "responses": {"200": _json({"$ref": "#/components/schemas/State"}, "the run's state")}}},
        "/cells": {"get": {"operationId": "cells", "summary": "Every cell of the run, with its runtime parameters",
                           "responses": {"200": _json({"type": "array", "items": {"type": "object"}}, "the cells")}}},
    }
    schemas: dict[str, Any] = {
        "Error": {"type": "object", "required": ["error", "errors"],
                  "properties": {"error": {"type": "string"},
                                 "errors": {"type": "array", "items": {
                                     "type": "object", "required": ["field", "message"],
                                     "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}}}},
        "State": {"type": "object", "required": ["clock", "time_ns", "running", "instances"],
                  "properties": {"title": {"type": "string"}, "clock": {"enum": ["real", "virtual"]},
                                 "state": {"enum": ["Running", "Exited"],
                                           "description": "upstream Rattan's RattanState, as its GET /state"},
                                 "time_ns": {"type": "integer", "minimum": 0}, "running": {"type": "boolean"},
                                 "changes_applied": {"type": "integer", "minimum": 0},
                                 "frames": {"type": "object", "description": "real runs: frames sent, and how many "
                                            "left later than planned by more than the threshold; tx_calls: the "
                                            "sendmmsg calls that carried them"},
                                 "timing": {"type": "object", "description": "real runs: how the engine's loop "
                                            "sleeps and wakes (precise, stretch_ns, margin_ns, coalesce_ns, "
                                            "wakeups, timer_wakeups, early_wakeups, timer_sets, spin_ns, "
                                            "tx_calls, tx_frames; docs/running.md, Timing)"},
                                 "gso": {"type": "array", "items": {"type": "object"},
                                         "description": "real runs, per endpoint (label, endpoint): super-frames "
                                         "received (super_frames, super_segments), cut at ingress (cut_frames), "
                                         "and merged from segments at egress (merged_frames, merged_segments); "
                                         "docs/running.md, GSO and plain mode"},
                                 "threads": {"type": "array", "description": "the engine threads' load: core (null: "
                                             "not pinned), shards, nodes, busy_ns of wall_ns, load (busy / wall), "
                                             "events fired, packets entered, regions (its shards that are "
                                             "regions of a split channel) and rebalances (the engine's "
                                             "rebalancing passes that moved a region)",
                                             "items": {"type": "object"}},
                                 "split": {"type": "object", "description": "real runs split over threads "
                                           "(--split): cuts in force, packets handed off between regions, and "
                                           "hand-offs dropped because their ring was full (also counted at "
                                           "their destination cell, reason `handoff`)"},
                                 "instances": {"type": "array", "items": {"type": "object"}}}},
        "Telemetry": _COUNTERS,
        "PythonCellTelemetry": {
            "type": "object", "required": ["time_ns", "class", "tick_ns", "ticks", "cells"],
            "description": "A Python cell has no packets of its own: its ticks, and the inner cells it drives "
                           "(each with its own counters)",
            "properties": {"time_ns": {"type": "integer"}, "class": {"type": "string"},
                           "tick_ns": {"type": "integer", "minimum": 1}, "ticks": {"type": "integer", "minimum": 0},
                           "skipped_ticks": {"type": "integer", "minimum": 0},
                           "failed": {"type": ["string", "null"], "description": "why its model stopped, if it did"},
                           "cells": {"type": "object", "additionalProperties": {"type": "string"}}}},
        "Cell": {"type": "object", "required": ["name", "type", "config", "runtime"],
                 "properties": {"channel": {"type": "string"}, "instance": {"type": "integer"},
                                "name": {"type": "string"}, "type": {"type": "string"},
                                "config": {"type": "object"}, "runtime": {"type": "object"}}},
        "Applied": {"type": "object", "required": ["applied_at_ns", "changed"],
                    "properties": {"applied_at_ns": {"type": "integer", "minimum": 0},
                                   "changed": {"type": "object"}}},
    }
    for (channel, name), cell in api._cells.items():
        ct = api.registry.get(cell["type"])
        props = api._runtime_props(cell["type"])
        key = f"Change_{cell['type']}"
        if props and key not in schemas:
            schemas[key] = _change_schema(ct, props)
        n = len(api._instances[channel])
        instance = {"name": "instance", "in": "query", "required": False,
                    "description": f"which instance of channel `{channel}` (0 to {n - 1})",
                    "schema": {"type": "integer", "minimum": 0, "maximum": n - 1, "default": 0}}
        op = f"{channel}.{name}"
        item: dict[str, Any] = {
            "parameters": [instance],
            "get": {"operationId": f"get {op}", "summary": f"Read `{name}` ({cell['type']}): its configuration "
                                                           f"and the runtime values in force",
                    "responses": {"200": _json({"$ref": "#/components/schemas/Cell"}, "the cell"),
                                  **_errors(404, 422)}},
        }
        if props:
            item["patch"] = {
                "operationId": f"change {op}",
                "summary": f"Change `{name}` ({cell['type']}): {', '.join(props)}",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": f"#/components/schemas/{key}"}}}},
                "responses": {"200": _json({"$ref": "#/components/schemas/Applied"}, "changed"),
                              **_errors(400, 404, 413, 422)}}
        paths[f"/channels/{channel}/cells/{name}"] = item
        paths[f"/channels/{channel}/cells/{name}/telemetry"] = {
            "parameters": [instance],
            "get": {"operationId": f"telemetry {op}", "summary": f"Counters of `{name}`: packets and bytes in, "
                                                                 f"out, queued, dropped (by reason)",
                    "responses": {"200": _json({"$ref": "#/components/schemas/" + (
                        "PythonCellTelemetry" if "python" in cell else "Telemetry")}, "the counters"),
                                  **_errors(404, 422)}}}
    _upstream_paths(api, paths, schemas)
    return {"openapi": "3.1.0",
            "info": {"title": f"Rattan control API ({api.title})", "version": "1",
                     "description": "Read and change the cells of a running emulation. Changes are checked "
                                    "against the cells' schemas; a rejected request changes nothing."},
            "paths": paths, "components": {"schemas": schemas}}


_RATE = {"type": "string", "examples": ["100Mbps"], "description": "a human-bandwidth string, as upstream"}
_SIZE = {"type": "string", "examples": ["16KiB"], "description": "a bytesize string, as upstream"}
_TIME = {"type": "string", "examples": ["50ms"], "description": "a duration (jiff span), as upstream"}
_NOT_AT_RUN_TIME = {"description": "accepted by upstream; rattan cannot change it while running (400 naming it)"}
# Upstream's config structs as its serde reads them (rattan/control/upstream.py cites the files).
_UPSTREAM_BODIES = {
    "Bw": {"required": ["bandwidth"], "properties": {
        "bandwidth": {"oneOf": [_RATE, {"type": "null"}], "description": "-> `rate`"},
        "queue_config": _NOT_AT_RUN_TIME,
        "bw_type": {"enum": ["NetworkLayer", "LinkLayer"], "description": "-> `overhead` 0 or 38 bytes"}}},
    "BwReplay": {"properties": {"trace_config": _NOT_AT_RUN_TIME, "queue_config": _NOT_AT_RUN_TIME,
                                "bw_type": {"enum": ["NetworkLayer", "LinkLayer"],
                                            "description": "-> `overhead` 0 or 38 bytes"}}},
    "Delay": {"required": ["delay"], "properties": {"delay": {**_TIME, "description": "-> `delay`"},
                                                    "ingress_round_up": _NOT_AT_RUN_TIME}},
    "DelayReplay": {"required": ["trace_config"], "properties": {"trace_config": _NOT_AT_RUN_TIME}},
    "Loss": {"required": ["pattern"], "properties": {"pattern": {
        "type": "array", "items": {"type": "number"},
        "description": "-> `rate`: one probability, or several equal ones; above 1 drops all, 0 or below none"}}},
    "LossReplay": {"required": ["trace_config"], "properties": {"trace_config": _NOT_AT_RUN_TIME}},
    "TokenBucket": {"properties": {
        "limit": {"type": "integer", "minimum": 0, "description": "bytes; must equal the file's (not runtime)"},
        "rate": {**_RATE, "description": "-> `rate`, with `burst`"}, "burst": {**_SIZE, "description": "-> `burst`"},
        "peak_rate": {**_RATE, "description": "-> `peak_rate`, with `min_burst` (also spelled `peakrate`)"},
        "min_burst": {**_SIZE, "description": "must equal the file's (also spelled `minburst`)"},
        "peakrate": _RATE, "minburst": _SIZE}},
}


def _upstream_paths(api, paths: dict, schemas: dict) -> None:
    """Upstream Rattan's routes: POST /config/<id> per cell it can reach, POST /notify."""
    from .upstream import UPSTREAM_TYPE
    paths["/notify"] = {"post": {
        "operationId": "upstream notify", "summary": "Upstream Rattan's notify (\"Start\" or \"FirstPacket\")",
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"enum": ["Start", "FirstPacket"]}}}},
        "responses": {"200": _json({"type": "object"}, "accepted (FirstPacket changes nothing here)"),
                      "400": _json(_ERROR, "Start on a running instance, or not a notify"),
                      "405": _json(_ERROR, "method not allowed here")}}}
    seen = set()
    for (channel, name), cell in api._cells.items():
        tag = UPSTREAM_TYPE.get(cell["type"])
        if tag not in _UPSTREAM_BODIES or "." in name or name in seen:
            continue
        seen.add(name)
        key = f"Upstream{tag}CellConfig"
        schemas.setdefault(key, {"type": "object", **_UPSTREAM_BODIES[tag],
                                 "description": f"upstream Rattan's {tag} config body; fields it does not "
                                                f"know are ignored, with a warning in the answer"})
        paths[f"/config/{name}"] = {"post": {
            "operationId": f"upstream config {channel}.{name}",
            "summary": f"Upstream Rattan's config route for `{name}` ({cell['type']}, upstream {tag})",
            "parameters": [{"name": "instance", "in": "query", "required": False,
                            "schema": {"type": "integer", "minimum": 0, "default": 0}}],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{key}"}}}},
            "responses": {"200": _json({"$ref": "#/components/schemas/Applied"},
                                       "changed (upstream answers 200 with an empty body)"),
                          "400": _json(_ERROR, "the body does not fit the cell, or asks for what cannot change "
                                               "while running; `errors` names the field, nothing was changed"),
                          "404": _json(_ERROR, "no such cell"), "405": _json(_ERROR, "method not allowed here"),
                          "413": _json(_ERROR, "the body is too large"),
                          "422": _json(_ERROR, "`instance` out of range")}}}
