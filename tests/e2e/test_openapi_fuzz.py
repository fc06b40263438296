"""Fuzzing the live server from its own OpenAPI document (schemathesis).

Every operation in `/openapi.json` is called with requests generated from its schema, valid
ones and invalid ones: the REST API with the admin key, the tracking API with the write key
(as HTTP Basic user, the way Segment libraries send it). Whatever is sent, the server never
answers with a server error, and every error it answers is JSON with a `code` and a `message`.

The run is bounded and repeatable: a fixed number of examples per operation, derandomized, no
example database, and no network beyond the test server on 127.0.0.1 (the OpenAPI document and
the requests go through clients that ignore proxy settings).

Each operation is driven by its schemathesis strategy under Hypothesis's own `@given`, rather
than by `schemathesis.pytest.from_fixture`, whose runner does not work with the pytest this
project uses; the generated requests and the checks are schemathesis's all the same.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from .server import Server

EXAMPLES_PER_OPERATION = 20
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def errors_are_json(ctx: schemathesis.CheckContext, response: schemathesis.Response,
                    case: schemathesis.Case) -> bool | None:
    """Every 4xx and 5xx answer is the API's JSON error: a non-empty text `code` and `message`."""
    if response.status_code < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        body = None
    if not (isinstance(body, dict) and isinstance(body.get("code"), str) and body["code"]
            and isinstance(body.get("message"), str) and body["message"]):
        raise AssertionError(f"{response.status_code} is not a JSON error with a code and a message: "
                             f"{response.text[:500]!r}")
    return None


@pytest.fixture
def api_schema(server: Server) -> schemathesis.BaseSchema:
    """The server's OpenAPI document, as it serves it."""
    with httpx.Client(trust_env=False, timeout=30) as client:
        document = client.get(f"{server.url}/openapi.json").raise_for_status().json()
    # The credentials are sent with every request (see `credentials`), not generated: otherwise
    # most invalid requests would be invalid only for lacking them, and never reach the routes.
    config = schemathesis.Config.from_dict({"base-url": server.url,
                                            "generation": {"with-security-parameters": False}})
    return schemathesis.openapi.from_dict(document, config=config)


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False  # 127.0.0.1 only, whatever proxy the environment names
        yield session


def credentials(server: Server, path: str) -> dict[str, str]:
    """The REST API takes the admin key as a bearer token; tracking, the write key as HTTP Basic user."""
    if path.startswith("/api/"):
        return {"Authorization": f"Bearer {server.admin_key}"}
    return {"Authorization": "Basic " + base64.b64encode(f"{server.write_key}:".encode()).decode()}


def _describe(error: BaseException) -> str:
    if isinstance(error, BaseExceptionGroup):
        return "\n".join(_describe(inner) for inner in error.exceptions)
    return f"{type(error).__name__}: {error}"


def test_no_request_makes_the_server_fail_and_every_error_is_json_with_a_code_and_a_message(
    server: Server, api_schema: schemathesis.BaseSchema, session: requests.Session
) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 17, "the OpenAPI document lost operations"
    failures: list[str] = []
    for operation in operations:
        headers = credentials(server, operation.path)
        cases = st.one_of(operation.as_strategy(schemathesis.GenerationMode.POSITIVE),
                          operation.as_strategy(schemathesis.GenerationMode.NEGATIVE))

        @FUZZ_SETTINGS
        @given(case=cases)
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate(session=session, headers=headers, timeout=30,
                                   checks=[not_a_server_error, errors_are_json])

        try:
            fuzz()
        except Exception as error:  # every operation is fuzzed; all that fail are reported together
            failures.append(f"{operation.label}\n{_describe(error)}")
    assert not failures, "\n\n".join(failures)
