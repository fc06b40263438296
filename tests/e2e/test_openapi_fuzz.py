"""Fuzzing the live server from its own OpenAPI document (schemathesis).

Every operation in `/openapi.json` is called with requests generated from its schema, valid
ones and invalid ones: the REST API with the admin key, the tracking API with the write key
(as HTTP Basic user, the way Segment libraries send it). Whatever is sent, the server never
answers with a server error, and every error it answers is JSON with a `code` and a `message`.

The run is bounded and repeatable: a fixed number of examples per operation, derandomized, no
example database, and no network beyond the test server on 127.0.0.1 (the OpenAPI document and
the requests go through clients that ignore proxy settings). It runs on SQLite and on
PostgreSQL, a few seconds on each.

Below it, the inputs that fuzzing (and probing around what it found) showed to crash the
server, each kept as the rule it broke.

Each operation is driven by its schemathesis strategy under Hypothesis's own `@given`, rather
than by `schemathesis.pytest.from_fixture`, whose runner does not work with the pytest this
project uses; the generated requests and the checks are schemathesis's all the same.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from .server import Server

EXAMPLES_PER_OPERATION = 25
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
        document = client.get(f"{server.url}/openapi.json", headers={"Authorization": f"Bearer {server.admin_key}"}
                              ).raise_for_status().json()
    # The credentials are sent with every request (see `credentials`), not generated: otherwise
    # most invalid requests would be invalid only for lacking them, and never reach the routes.
    config = schemathesis.Config.from_dict({"base-url": server.url,
                                            "generation": {"with-security-parameters": False}})
    return schemathesis.openapi.from_dict(document, config=config)


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False  # 127.0.0.1 only, whatever proxy the environment names
        answers: Counter[int] = Counter()
        session.hooks["response"].append(lambda response, *args, **kwargs: answers.update([response.status_code]))
        session.answers = answers  # type: ignore[attr-defined]
        yield session


def credentials(server: Server, path: str) -> dict[str, str]:
    """The REST API takes the admin key as a bearer token; tracking, the write key as HTTP Basic user."""
    if path.startswith("/api/"):
        return {"Authorization": f"Bearer {server.admin_key}"}
    return {"Authorization": "Basic " + base64.b64encode(f"{server.write_key}:".encode()).decode()}


def _describe(error: BaseException) -> str:
    """What failed: schemathesis's report of a case (with a curl command that replays it), or
    each of the distinct failures Hypothesis found."""
    if isinstance(error, BaseExceptionGroup):
        if all(isinstance(inner, BaseExceptionGroup) for inner in error.exceptions):
            return "\n".join(_describe(inner) for inner in error.exceptions)
        return str(error)
    return f"{type(error).__name__}: {error}"


def fuzz_operation(operation: schemathesis.APIOperation, headers: dict[str, str],
                   session: requests.Session) -> str | None:
    """Call one operation with generated requests, valid and invalid; what failed, or None."""
    cases = st.one_of(operation.as_strategy(schemathesis.GenerationMode.POSITIVE),
                      operation.as_strategy(schemathesis.GenerationMode.NEGATIVE))

    @FUZZ_SETTINGS
    @given(case=cases)
    def fuzz(case: schemathesis.Case) -> None:
        case.call_and_validate(session=session, headers=headers, timeout=30,
                               checks=[not_a_server_error, errors_are_json])

    try:
        fuzz()
    except (Exception, BaseExceptionGroup) as error:  # noqa: BLE001 - reported with the other operations'
        return f"{operation.label}\n{_describe(error)}"
    return None


def test_no_request_makes_the_server_fail_and_every_error_is_json_with_a_code_and_a_message(
    server: Server, api_schema: schemathesis.BaseSchema, session: requests.Session
) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 43, "the OpenAPI document lost operations"
    failures = [failure for operation in operations
                if (failure := fuzz_operation(operation, credentials(server, operation.path), session))]
    answers: Counter[int] = session.answers  # type: ignore[attr-defined]
    print(f"schemathesis: {len(operations)} operations, {sum(answers.values())} requests, "
          f"{sum(n for status, n in answers.items() if status >= 500)} server errors; answers by status: "
          + ", ".join(f"{status}: {n}" for status, n in sorted(answers.items())))
    assert not failures, "\n\n".join(failures)
    assert sum(answers.values()) >= len(operations) * 5, "far fewer requests than examples: the run is not fuzzing"


# --- what fuzzing found: each of these once made the server answer 500 ----------------------


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _assert_error(response: httpx.Response, status: int, code: str, *words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    assert all(word in body["message"] for word in words), body


@pytest.mark.parametrize(("fields", "where", "problem", "tracked_too"), [
    ({"source": "web\u0000site"}, "source", "NUL", True),
    ({"company_size": "1e300"}, "company_size", "out of range", True),
    ({"company_size": 10**400}, "company_size", "out of range", False),  # too large for the tracking API's JSON
    ({"title": "VP \ud800"}, "title", "surrogate", False),  # not JSON the tracking API reads
])
def test_a_field_value_no_database_can_keep_is_refused_saying_which_field(
    server: Server, fields: dict[str, object], where: str, problem: str, tracked_too: bool
) -> None:
    body = json.dumps({"email": "ann@acme.example", "fields": fields})  # as any client may send it
    with server.admin() as admin:
        _assert_error(admin.post("/api/v1/leads", content=body, headers={"Content-Type": "application/json"}),
                      422, "invalid_field", f"fields.{where}", problem)
        assert admin.get("/api/v1/leads").json()["items"] == []
    if tracked_too:  # the same values as traits are refused by the tracking API
        with server.tracker() as tracker:
            answer = tracker.post("/v1/identify", json={"userId": "u-ann",
                                                        "traits": {"email": "ann@acme.example", **fields}})
        _assert_error(answer, 400, "invalid_message", f"traits.{where}", problem)


@pytest.mark.parametrize("timestamp", ["9999-12-31T23:30:00-05:00", "0001-01-01T00:10:00+01:00"])
def test_a_timestamp_outside_the_calendar_once_in_utc_is_refused_with_its_reason(server: Server, timestamp: str) -> None:
    with server.tracker() as tracker:
        answer = tracker.post("/v1/track", json={"userId": "u-ann", "event": "Email Clicked", "timestamp": timestamp})
    _assert_error(answer, 400, "invalid_message", "timestamp", "out of range")


def test_a_visit_whose_address_cannot_be_parsed_still_counts(server: Server) -> None:
    with server.tracker() as tracker:
        answer = tracker.post("/v1/batch", json={"batch": [
            {"type": "identify", "userId": "u-ann", "traits": {"email": "ann@acme.example"}},
            {"type": "page", "userId": "u-ann", "properties": {"path": "/pricing", "url": "https://[not-ipv6/pricing"}},
        ]})
    assert answer.status_code == 200 and answer.json()["accepted"] == 2, answer.text
    with server.admin() as admin:
        [lead] = admin.get("/api/v1/leads").json()["items"]
    assert lead["scores"]["engagement"] == pytest.approx(11, rel=0.01)  # pricing page and page view


def test_groups_that_give_the_same_website_get_an_account_each_and_none_takes_anothers(server: Server) -> None:
    def group(user: str, group_id: str) -> dict[str, object]:
        return {"type": "group", "userId": user, "groupId": group_id,
                "traits": {"name": group_id.title(), "website": "https://www.acme.example"}}

    people = [{"type": "identify", "userId": f"u{i}", "traits": {"email": f"p{i}@gmail.com"}} for i in range(3)]
    with server.tracker() as tracker:
        first = tracker.post("/v1/batch", json={"batch": [*people, group("u0", "acme-eu"), group("u1", "acme-us")]})
        later = tracker.post("/v1/batch", json={"batch": [group("u2", "acme-apac"), group("u0", "acme-eu")]})
    assert first.status_code == later.status_code == 200, (first.text, later.text)

    with server.admin() as admin:
        accounts = {a["group_id"]: a for a in admin.get("/api/v1/accounts").json()["items"]}
    assert sorted(accounts) == ["acme-apac", "acme-eu", "acme-us"]
    assert [a["domain"] for a in accounts.values()].count("acme.example") == 1  # a domain names one account
    assert accounts["acme-eu"]["domain"] == "acme.example"  # the first to give it keeps it
    assert {a["group_id"]: a["leads"] for a in accounts.values()} == {"acme-eu": 1, "acme-us": 1, "acme-apac": 1}


def test_a_group_whose_name_holds_a_nul_character_is_refused_and_does_not_block_its_visitor(server: Server) -> None:
    with server.tracker() as tracker:
        refused = tracker.post("/v1/group", json={"anonymousId": "visitor-1", "groupId": "acme",
                                                   "traits": {"name": "Acme\u0000Corp"}})
        identified = tracker.post("/v1/identify", json={"anonymousId": "visitor-1", "userId": "u-ann",
                                                         "traits": {"email": "ann@acme.example"}})
    _assert_error(refused, 400, "invalid_message", "traits.name", "NUL")
    assert identified.status_code == 200, identified.text


@pytest.mark.parametrize("cursor", [
    _cursor("9999-12-31T23:59:59-01:00|1"), _cursor("2026-01-01T00:00:00|1"),
    _cursor("2026-01-01T00:00:00+00:00|99999999999999999999999"), _cursor("2026-01-01T00:00:00+00:00|-1"),
])
def test_an_events_cursor_the_api_did_not_give_is_refused_as_such(server: Server, cursor: str) -> None:
    with server.admin() as admin:
        lead = admin.post("/api/v1/leads", json={"email": "ann@acme.example"}).json()
        _assert_error(admin.get(f"/api/v1/leads/{lead['id']}/events", params={"cursor": cursor}),
                      400, "invalid_cursor", "cursor")


def test_a_candidate_playbook_with_a_character_yaml_forbids_is_invalid_at_its_line_and_column(server: Server) -> None:
    with server.admin() as admin:
        answer = admin.post("/api/v1/playbook/validate", json={"yaml": "name: Default\nversion: \"2\u0091\"\n"})
    assert answer.status_code == 200, answer.text
    check = answer.json()
    assert check["valid"] is False
    [problem] = check["problems"]
    assert (problem["line"], problem["column"]) == (2, 12) and "U+0091" in problem["message"]


@pytest.mark.parametrize("depth", [40, 300, 1000])
def test_a_tracking_body_nested_too_deep_is_refused_saying_where_not_a_server_error(server: Server, depth: int) -> None:
    nested = "[" * depth + "]" * depth
    body = '{"userId": "u-ann", "event": "Clicked", "properties": {"list": ' + nested + "}}"
    with server.tracker() as tracker:
        answer = tracker.post("/v1/track", content=body, headers={"Content-Type": "application/json"})
        batch = tracker.post("/v1/batch", content='{"batch": [' + body.replace("{", '{"type": "track", ', 1) + "]}",
                             headers={"Content-Type": "application/json"})
    _assert_error(answer, 400, "too_deep", "properties.list.0", "nested deeper than")
    _assert_error(batch, 400, "too_deep", "batch.0.properties.list.0")


def test_a_rest_api_body_larger_than_the_limit_is_refused_unread_whether_its_size_is_declared_or_not(
    server: Server,
) -> None:
    from leadrelay.entrypoints.api.limits import MAX_BODY_BYTES

    def chunks() -> Iterator[bytes]:
        for _ in range(MAX_BODY_BYTES // 50_000 + 2):
            yield b" " * 50_000

    declared = '{"email": "ann@acme.example", "fields": {"title": "' + "x" * MAX_BODY_BYTES + '"}}'
    with server.admin() as admin:
        answers = [admin.post("/api/v1/leads", content=declared, headers={"Content-Type": "application/json"}),
                   admin.post("/api/v1/leads", content=chunks(), headers={"Content-Type": "application/json"})]
        assert admin.get("/api/v1/leads").json()["items"] == []
    for answer in answers:
        _assert_error(answer, 413, "too_large", "request body larger than 2 MB")
