"""The official Segment Python library (`segment.analytics`), pointed at a LeadRelay server,
just as a customer would point it: `host` is the server's address, the write key is LeadRelay's.
What the library sends (batches, HTTP Basic write key, gzip, its own message ids and times) is
read back over the REST API: the lead, its fields and scores, its events, touches and account.
Each test runs on SQLite and on PostgreSQL.

Every client queues messages and uploads them from its own thread, as in production; a test
calls `flush()` and then checks that the library saw no failure. Retries and timeouts are
short, so that a failure fails the test quickly instead of being retried for minutes.
"""

from __future__ import annotations

import atexit
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from segment.analytics import Client
from segment.analytics import request as segment_request
from segment.analytics.request import APIError

from leadrelay.domain.clock import utc_now

from .server import Server

SITE = "https://www.leadrelay-customer.example"
# The default playbook's rules these tests rely on (see default_playbook.yaml).
FIT_OF_ADA = {"target industry": 25, "mid-market or larger": 20, "decision maker": 25}
EMAIL_CLICK, PRICING_PAGE, PAGE_VIEW = 5, 10, 1
GZIP_MAGIC = b"\x1f\x8b"


class Sdk:
    """A Segment client for one test, and what its `on_error` callback was told."""

    def __init__(self, server: Server, write_key: str | None = None, **options: Any) -> None:
        self.server = server
        self.failures: list[tuple[Exception, list[dict[str, Any]]]] = []
        self.client = Client(
            write_key or server.write_key, host=server.url,
            on_error=lambda error, batch: self.failures.append((error, batch)),
            max_retries=1, timeout=5, max_total_backoff_duration=2, upload_interval=0.05, **options,
        )

    def flush(self) -> None:
        """Upload everything queued; fail if the library reported an error, or if the server
        refused a message (that the library does not hear of: a batch is answered 200)."""
        self.client.flush()
        assert not self.failures, f"the Segment library reported: {[str(error) for error, _ in self.failures]}"
        with self.server.admin() as admin:
            refused = admin.get("/api/v1/tracking/rejections").json()["items"]
        assert not refused, f"the server refused: {[(r['reason'], r['message']) for r in refused]}"

    def close(self) -> None:
        self.client.join()  # stop its upload thread
        atexit.unregister(self.client.join)


@contextmanager
def segment(server: Server, write_key: str | None = None, **options: Any) -> Iterator[Sdk]:
    sdk = Sdk(server, write_key, **options)
    try:
        yield sdk
    finally:
        sdk.close()


def hours_ago(hours: float) -> datetime:
    return utc_now() - timedelta(hours=hours)


def find_lead(server: Server, email: str) -> dict[str, Any]:
    """The lead with this email, found by email and then read whole by id."""
    with server.admin() as admin:
        page = admin.get("/api/v1/leads", params={"email": email})
        assert page.status_code == 200, page.text
        items = page.json()["items"]
        assert [item["email"] for item in items] == [email.lower()]
        detail = admin.get(f"/api/v1/leads/{items[0]['id']}")
        assert detail.status_code == 200, detail.text
        return detail.json()  # type: ignore[no-any-return]


def events_of(server: Server, lead_id: int) -> list[dict[str, Any]]:
    """The lead's timeline, oldest first."""
    with server.admin() as admin:
        answer = admin.get(f"/api/v1/leads/{lead_id}/events", params={"limit": 500})
        assert answer.status_code == 200, answer.text
        return list(reversed(answer.json()["items"]))


def all_leads(server: Server) -> list[dict[str, Any]]:
    with server.admin() as admin:
        return admin.get("/api/v1/leads").json()["items"]  # type: ignore[no-any-return]


def identify_ada(sdk: Sdk, *, at: datetime | None = None, **extra: Any) -> None:
    sdk.client.identify("user-ada", {
        "email": "Ada@Acme-Analytics.example", "firstName": "Ada", "lastName": "Lovelace",
        "industry": "Software", "title": "VP Marketing", "company_size": 250,
    }, timestamp=at or hours_ago(3), **extra)


ADA = "ada@acme-analytics.example"


def test_a_lead_identified_through_the_segment_sdk_is_scored_and_readable_over_rest(server: Server) -> None:
    with segment(server) as sdk:
        identify_ada(sdk)
        sdk.flush()

    lead = find_lead(server, "Ada@Acme-Analytics.example")
    assert lead["email"] == ADA  # the key of a lead: its email, trimmed and lower-cased
    assert lead["fields"] == {"name": "Ada Lovelace", "industry": "software", "title": "VP Marketing",
                              "company_size": 250}
    assert (lead["stage"], lead["highest_stage"]) == ("lead", "lead")
    assert lead["scores"]["fit_breakdown"] == FIT_OF_ADA
    assert lead["scores"]["fit"] == sum(FIT_OF_ADA.values()) == 70
    assert (lead["scores"]["engagement"], lead["scores"]["engagement_breakdown"]) == (0, {})
    assert lead["scores"]["total"] == 70
    assert [(h["from_stage"], h["to_stage"], h["by"]) for h in lead["history"]] == [(None, "lead", "created")]
    assert lead["first_touch"] is None and lead["last_touch"] is None  # no campaign, no referrer

    [event] = events_of(server, lead["id"])
    assert (event["type"], event["name"], event["points"]) == ("identify", "identify", 0)
    assert event["traits"]["title"] == "VP Marketing"
    assert len(event["message_id"]) == 36  # the library's own id (a UUID) is kept, to drop resends

    with server.admin() as admin:  # a company address makes a company account
        account = admin.get(f"/api/v1/accounts/{lead['account_id']}").json()
    assert (account["domain"], account["leads"], account["group_id"]) == ("acme-analytics.example", 1, None)


def test_tracked_email_clicks_earn_engagement_and_a_demo_request_fast_tracks_the_lead_to_sales(
    server: Server,
) -> None:
    with segment(server) as sdk:
        identify_ada(sdk, at=hours_ago(3))
        sdk.client.track("user-ada", "Email Clicked", {"campaign": "spring launch", "link": f"{SITE}/pricing"},
                         timestamp=hours_ago(2))
        sdk.client.track("user-ada", "Email Clicked", {"campaign": "spring launch"}, timestamp=hours_ago(1.5))
        sdk.flush()
        assert find_lead(server, ADA)["stage"] == "lead"  # 70 fit, 10 engagement: short of the MQL rule

        sdk.client.track("user-ada", "Demo Request", {"form": "contact-sales"}, timestamp=hours_ago(1))
        sdk.flush()

    lead = find_lead(server, ADA)
    assert (lead["stage"], lead["highest_stage"]) == ("sal", "sal")  # past mql: sales takes it at once
    assert [(h["from_stage"], h["to_stage"], h["by"]) for h in lead["history"]] == [
        (None, "lead", "created"), ("lead", "sal", "fast_track:demo request")]
    assert lead["scores"]["engagement"] == pytest.approx(2 * EMAIL_CLICK, rel=0.01)  # faded a few hours' worth
    assert lead["scores"]["engagement_breakdown"].keys() == {"email click"}
    assert lead["scores"]["total"] == pytest.approx(70 + 2 * EMAIL_CLICK, rel=0.01)

    timeline = events_of(server, lead["id"])
    assert [(e["type"], e["name"], e["points"]) for e in timeline] == [
        ("identify", "identify", 0), ("track", "email_clicked", EMAIL_CLICK), ("track", "email_clicked", EMAIL_CLICK),
        ("track", "demo_request", 0)]
    assert timeline[1]["properties"] == {"campaign": "spring launch", "link": f"{SITE}/pricing"}
    assert timeline[3]["properties"] == {"form": "contact-sales"}


def test_page_views_from_campaigns_set_the_first_and_last_touch_and_the_pricing_page_scores_more(
    server: Server,
) -> None:
    newsletter = {"source": "newsletter", "medium": "email", "name": "spring-launch"}
    with segment(server) as sdk:
        identify_ada(sdk, at=hours_ago(30))
        sdk.client.page("user-ada", name="Pricing", properties={
            "path": "/pricing", "url": f"{SITE}/pricing", "referrer": "https://mail.example/inbox",
        }, context={"campaign": newsletter}, timestamp=hours_ago(28))
        sdk.client.page("user-ada", name="Getting started", properties={
            "path": "/docs/start", "url": f"{SITE}/docs/start", "referrer": f"{SITE}/pricing",
        }, timestamp=hours_ago(27))  # from one page of the site to another: not a touch
        sdk.client.page("user-ada", name="Webinar", properties={
            "path": "/blog/webinar",
            "url": f"{SITE}/blog/webinar?utm_source=linkedin&utm_medium=social&utm_campaign=webinar-q3",
            "referrer": "https://www.linkedin.example/feed",
        }, timestamp=hours_ago(2))
        sdk.flush()

    lead = find_lead(server, ADA)
    first, last = lead["first_touch"], lead["last_touch"]
    assert (first["source"], first["medium"], first["campaign"]) == ("newsletter", "email", "spring-launch")
    assert (first["referrer"], first["url"]) == ("https://mail.example/inbox", f"{SITE}/pricing")
    assert (last["source"], last["medium"], last["campaign"]) == ("linkedin", "social", "webinar-q3")
    assert last["url"].startswith(f"{SITE}/blog/webinar?")
    assert datetime.fromisoformat(first["at"]) < datetime.fromisoformat(last["at"])
    assert lead["source"] == "newsletter"  # a lead comes from its first touch

    assert lead["scores"]["engagement_breakdown"] == pytest.approx(
        {"pricing page": PRICING_PAGE, "page view": 3 * PAGE_VIEW}, rel=0.03)  # faded a day's worth at most
    pages = [e for e in events_of(server, lead["id"]) if e["type"] == "page"]
    assert [(e["name"], e["properties"]["path"], e["points"]) for e in pages] == [
        ("page_view", "/pricing", PRICING_PAGE + PAGE_VIEW), ("page_view", "/docs/start", PAGE_VIEW),
        ("page_view", "/blog/webinar", PAGE_VIEW)]
    assert [e["properties"]["name"] for e in pages] == ["Pricing", "Getting started", "Webinar"]  # sent top-level
    assert pages[0]["touch"]["campaign"] == "spring-launch" and pages[1]["touch"] is None


def test_a_group_call_names_the_account_of_the_leads_company_and_ties_its_people_to_it(server: Server) -> None:
    with segment(server) as sdk:
        identify_ada(sdk)
        sdk.client.group("user-ada", "acme-42", {"name": "Acme Analytics", "website": "https://www.acme-analytics.example",
                                                 "employees": 250, "plan": "enterprise"}, timestamp=hours_ago(2))
        sdk.client.identify("user-grace", {"email": "grace@acme-analytics.example", "title": "Data Engineer"},
                            timestamp=hours_ago(1))
        sdk.flush()

    ada, grace = find_lead(server, ADA), find_lead(server, "grace@acme-analytics.example")
    assert ada["account_id"] == grace["account_id"] is not None
    assert ada["fields"]["name"] == "Ada Lovelace"  # the group's name is the account's, not the person's
    with server.admin() as admin:
        account = admin.get(f"/api/v1/accounts/{ada['account_id']}").json()
        by_domain = admin.get("/api/v1/accounts", params={"domain": "acme-analytics.example"}).json()["items"]
    assert (account["name"], account["group_id"], account["domain"], account["leads"]) == (
        "Acme Analytics", "acme-42", "acme-analytics.example", 2)
    assert account["traits"] == {"name": "Acme Analytics", "website": "https://www.acme-analytics.example",
                                 "employees": 250, "plan": "enterprise"}
    assert [a["id"] for a in by_domain] == [account["id"]]  # one account for the company, not two
    group_event = [e for e in events_of(server, ada["id"]) if e["type"] == "group"]
    assert [(e["name"], e["properties"]["groupId"]) for e in group_event] == [("group", "acme-42")]


def test_batches_the_sdk_gzips_are_stored_like_plain_ones(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[str | None, bytes]] = []  # what went on the wire: Content-Encoding and body
    post = segment_request._session.post

    def spy(url: str, **kwargs: Any) -> Any:
        sent.append((kwargs["headers"].get("Content-Encoding"), kwargs["data"][:2]))
        return post(url, **kwargs)

    monkeypatch.setattr(segment_request._session, "post", spy)
    with segment(server, gzip=True) as sdk:
        identify_ada(sdk)
        for hours in (2, 1):
            sdk.client.track("user-ada", "Email Clicked", {"campaign": "spring launch"}, timestamp=hours_ago(hours))
        sdk.flush()

    lead = find_lead(server, ADA)
    assert lead["scores"]["fit"] == 70
    assert lead["scores"]["engagement"] == pytest.approx(2 * EMAIL_CLICK, rel=0.01)
    assert [e["name"] for e in events_of(server, lead["id"])] == ["identify", "email_clicked", "email_clicked"]
    assert sent and all(sent_as == ("gzip", GZIP_MAGIC) for sent_as in sent)


def test_anonymous_page_views_count_for_the_lead_once_identify_ties_the_anonymous_id_to_the_user(
    server: Server,
) -> None:
    visitor = "3f9a2c1e-anonymous-visitor"
    with segment(server) as sdk:
        sdk.client.page(anonymous_id=visitor, name="Pricing", properties={
            "path": "/pricing", "url": f"{SITE}/pricing?utm_source=google&utm_medium=cpc&utm_campaign=brand",
        }, timestamp=hours_ago(5))
        sdk.client.page(anonymous_id=visitor, name="Customers", properties={"path": "/customers"},
                        timestamp=hours_ago(4))
        sdk.flush()
        assert all_leads(server) == []  # an unknown visitor is no lead (yet)

        identify_ada(sdk, at=hours_ago(1), anonymous_id=visitor)  # the sign-up form: the visitor has a name
        sdk.flush()

    lead = find_lead(server, ADA)
    timeline = events_of(server, lead["id"])
    assert [(e["name"], e["points"]) for e in timeline] == [
        ("page_view", PRICING_PAGE + PAGE_VIEW), ("page_view", PAGE_VIEW), ("identify", 0)]
    assert lead["scores"]["engagement"] == pytest.approx(PRICING_PAGE + 2 * PAGE_VIEW, rel=0.01)
    assert (lead["first_touch"]["source"], lead["first_touch"]["medium"], lead["first_touch"]["campaign"]) == (
        "google", "cpc", "brand")  # the visit before the lead existed is its first touch
    assert lead["source"] == "google"

    with segment(server) as sdk:  # and what the same browser does later counts for the lead too
        sdk.client.page(anonymous_id=visitor, properties={"path": "/docs"}, timestamp=hours_ago(0.5))
        sdk.flush()
    assert len(events_of(server, lead["id"])) == 4


def test_a_message_the_sdk_sends_twice_counts_once(server: Server) -> None:
    with segment(server) as sdk:
        identify_ada(sdk)
        for _ in range(2):  # a resend after a lost answer carries the same message id
            sdk.client.track("user-ada", "Email Clicked", message_id="click-1", timestamp=hours_ago(1))
            sdk.flush()

    lead = find_lead(server, ADA)
    assert [e["message_id"] for e in events_of(server, lead["id"])][1:] == ["click-1"]
    assert lead["scores"]["engagement"] == pytest.approx(EMAIL_CLICK, rel=0.01)


def test_a_wrong_write_key_reaches_the_sdks_on_error_and_nothing_is_stored(server: Server) -> None:
    with segment(server, write_key="not-a-key-of-this-server") as sdk:
        identify_ada(sdk)
        sdk.client.track("user-ada", "Demo Request", timestamp=hours_ago(1))
        sdk.client.flush()
        failures = list(sdk.failures)

    assert failures, "the library was not told"
    for error, _ in failures:
        assert isinstance(error, APIError)
        assert (error.status, error.code) == (401, "unauthorized") and error.message
    assert [message["type"] for _, batch in failures for message in batch] == ["identify", "track"]  # each once
    assert all_leads(server) == []
    with server.admin() as admin:
        assert admin.get("/api/v1/tracking/rejections").json()["items"] == []  # no key, no record of its calls
