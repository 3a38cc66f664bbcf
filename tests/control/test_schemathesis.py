"""schemathesis against the control API's own /openapi.json (in process, through WSGI): no 5xx, responses
as documented, and no change applied by a request the API rejected."""
from __future__ import annotations

import tempfile
from pathlib import Path

import hypothesis
import schemathesis

from rattan.control.server import wsgi_app
from tests.control.conftest import every_runtime_cell, virtual_api

# One cell of every type that has runtime parameters, and one that has none: from the registry,
# so a new cell type is fuzzed with no edit here. Its trace files are parsed into the plan at compile
# time and are not needed afterwards.
with tempfile.TemporaryDirectory() as _traces:
    PATH, _ = every_runtime_cell(Path(_traces))
    API = virtual_api(PATH, "fuzz.rtn")
schema = schemathesis.openapi.from_wsgi("/openapi.json", wsgi_app(API))


def _values() -> dict:
    return {name: API.cell(API.targets[0], name)["runtime"] for _, name in API._cells}


BEFORE: dict = {}  # what the API held before the request being checked


@schemathesis.check
def rejected_requests_change_nothing(ctx, response, case):
    if response.status_code >= 400 and case.method.upper() == "PATCH":
        assert API.changes == BEFORE["changes"], "a rejected request counted as a change"
        assert _values() == BEFORE["values"], "a rejected request changed a cell"


@schema.parametrize()
@hypothesis.settings(max_examples=40, deadline=None,
                     suppress_health_check=list(hypothesis.HealthCheck))
def test_the_api_survives_its_own_schema(case):
    BEFORE.update(changes=API.changes, values=_values())
    # Not `positive_data_acceptance`: some rules are beyond a schema (a time not in the past, a
    # quantity that converts to a value in range); the API rejects those with 422, naming the field.
    response = case.call_and_validate(additional_checks=[rejected_requests_change_nothing],
                                      excluded_checks=[schemathesis.checks.positive_data_acceptance])
    assert response.status_code < 500
