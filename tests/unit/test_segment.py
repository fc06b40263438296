"""Segment-format messages become events, or are refused with a reason a person can act on."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from leadrelay.adapters.segment import (
    InvalidMessage, batch_messages, checked_email, map_traits, parse_time, to_event, touch_of,
)

from .builders import UTC

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def identify(**extra):
    return {"type": "identify", "userId": "u-1", "traits": {"email": "ada@acme.example"},
            "timestamp": "2026-03-01T10:00:00Z", **extra}


def track(event="Demo Requested", **extra):
    return {"type": "track", "event": event, "anonymousId": "anon-1", "timestamp": "2026-03-01T10:00:00Z", **extra}


def refusal(message, playbook) -> str:
    with pytest.raises(InvalidMessage) as error:
        to_event(message, playbook, NOW)
    return str(error.value)


# --- what is taken ------------------------------------------------------------------------------


def test_an_identify_message_gives_the_lead_key_and_its_fields_in_the_playbooks_types(playbook):
    message = identify(traits={"email": "  Ada@ACME.example ", "job_title": "CTO", "employees": "120",
                               "industry": "SOFTWARE", "newsletter": "yes", "favourite_colour": "green"})

    got = to_event(message, playbook, NOW)

    assert (got.type, got.name, got.email, got.user_id) == ("identify", "identify", "ada@acme.example", "u-1")
    assert got.traits == {"title": "CTO", "company_size": 120, "industry": "software", "newsletter": True}
    assert got.timestamp == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def test_track_event_names_are_written_one_way(playbook):
    names = {to_event(track(spelling), playbook, NOW).name for spelling in ("Demo Request", "demoRequest", "demo-request", "demo_request")}
    assert names == {"demo_request"}


def test_a_page_message_is_a_page_view_with_its_properties(playbook):
    got = to_event({"type": "page", "userId": "ada@acme.example", "properties": {"path": "/pricing"}}, playbook, NOW)

    assert (got.name, got.email, got.properties) == ("page_view", "ada@acme.example", {"path": "/pricing"})


def test_a_message_without_a_time_happens_now(playbook):
    assert to_event(track(timestamp=None), playbook, NOW).timestamp == NOW


def test_the_same_message_sent_twice_without_an_id_gets_the_same_id(playbook):
    first, again = to_event(track(), playbook, NOW), to_event(track(), playbook, NOW)
    other = to_event(track("Webinar Attended"), playbook, NOW)

    assert first.message_id == again.message_id != other.message_id


def test_a_message_id_given_by_the_sender_is_kept(playbook):
    assert to_event(track(messageId="abc-123"), playbook, NOW).message_id == "abc-123"


def test_traits_in_the_context_count_like_traits(playbook):
    got = to_event(track(userId="u-9", context={"traits": {"email": "bo@beta.example", "company": "Beta"}}), playbook, NOW)

    assert (got.email, got.traits) == ("bo@beta.example", {"company": "Beta"})


def test_first_and_last_name_make_the_name(playbook):
    got = to_event(identify(traits={"email": "ada@acme.example", "firstName": "Ada", "lastName": "Lovelace"}), playbook, NOW)

    assert got.traits["name"] == "Ada Lovelace"


def test_blank_trait_values_are_left_out_so_they_cannot_erase_known_fields(playbook):
    assert map_traits({"title": "   ", "company": "", "country": None, "industry": "retail"}, playbook) == {"industry": "retail"}


def test_an_alias_links_the_anonymous_visitor_to_the_user(playbook):
    got = to_event({"type": "alias", "previousId": "anon-1", "userId": "u-1"}, playbook, NOW)

    assert (got.name, got.anonymous_id, got.user_id, got.email) == ("alias", "anon-1", "u-1", None)


# --- what is refused -------------------------------------------------------------------------------


@pytest.mark.parametrize("email", ["ada", "ada@", "@acme.example", "ada lovelace@acme.example", "ada@@acme.example"])
def test_an_invalid_email_is_refused(email, playbook):
    reason = refusal(identify(traits={"email": email}), playbook)

    assert reason.startswith(f"invalid email {email!r}")


def test_an_email_key_is_trimmed_and_lower_cased():
    assert checked_email("  Ada.Lovelace@ACME.Example ") == "ada.lovelace@acme.example"


def test_a_time_more_than_a_day_ahead_is_refused(playbook):
    ahead = (NOW + timedelta(days=1, minutes=1)).isoformat()

    assert refusal(track(timestamp=ahead), playbook) == f"timestamp: {ahead} is in the future"


def test_a_time_a_little_ahead_is_taken_as_clock_skew(playbook):
    ahead = NOW + timedelta(hours=23)

    assert to_event(track(timestamp=ahead.isoformat()), playbook, NOW).timestamp == ahead


def test_a_time_before_2000_is_refused(playbook):
    assert refusal(track(timestamp="1999-12-31T23:59:59Z"), playbook) == "timestamp: 1999-12-31T23:59:59Z is before 2000"


@pytest.mark.parametrize("raw", ["yesterday", "2026-13-01T00:00:00Z", 1772445600, ["2026-03-01"]])
def test_a_time_that_is_not_iso_8601_is_refused(raw, playbook):
    assert "ISO 8601" in refusal(track(timestamp=raw), playbook)


def test_times_are_kept_in_utc():
    assert parse_time("2026-03-01T10:00:00+02:00", NOW) == datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    assert parse_time("2026-03-01T10:00:00", NOW) == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def test_a_message_from_nobody_is_refused(playbook):
    message = track()
    del message["anonymousId"]

    assert refusal(message, playbook) == "a message needs a userId or an anonymousId"


@pytest.mark.parametrize(
    "message, reason",
    [
        ({"type": "alias", "userId": "u-1"}, "alias needs both previousId and userId"),
        ({"type": "track", "userId": "u-1"}, "track needs an event name"),
        ({"type": "purchase", "userId": "u-1"}, "type: expected one of identify, track, page, screen, group, alias, got 'purchase'"),
        (["not", "an", "object"], "expected a JSON object, got list"),
        ({"type": "identify", "userId": ["u-1"]}, "userId: expected text, got list"),
        ({"type": "identify", "userId": True}, "userId: expected text, got bool"),
        ({"type": "identify", "userId": "u" * 256}, "userId: longer than 255 characters"),
        ({"type": "identify", "userId": "u-1", "traits": "ada@acme.example"}, "traits: expected an object, got str"),
        ({"type": "identify", "userId": "u-1", "traits": {"email": 42}}, "traits.email: expected text, got int"),
        ({"type": "identify", "userId": "u-1", "traits": {"employees": "many"}},
         "traits.employees: expected a number, got 'many'"),
        ({"type": "identify", "userId": "u-1", "traits": {"industry": "mining"}},
         "traits.industry: 'mining' is not one of software, fintech"),
        ({"type": "identify", "userId": "u-1", "traits": {"newsletter": "perhaps"}},
         "traits.newsletter: expected true or false, got 'perhaps'"),
        ({"type": "identify", "userId": "u-1", "traits": {"last_event_date": "31/01/2026"}},
         "traits.last_event_date: expected a date like 2026-01-31"),
        ({"type": "identify", "userId": "u-1", "traits": {"company": {"name": "Acme"}}},
         "traits.company: expected text, got dict"),
        ({"type": "identify", "userId": "u-1", "traits": {"company": "x" * 1001}},
         "traits.company: longer than 1000 characters"),
    ],
    ids=["alias without previousId", "track without event", "unknown type", "not an object", "userId a list",
         "userId a boolean", "userId too long", "traits not an object", "email not text", "number not a number",
         "enum value not listed", "boolean not a boolean", "date not a date", "text an object", "text too long"],
)
def test_a_message_of_the_wrong_shape_is_refused_saying_what_is_wrong(message, reason, playbook):
    assert reason in refusal(message, playbook)


# --- touches: where a visit came from ----------------------------------------------------------------

def test_a_campaign_in_the_context_is_the_touch_of_the_event(playbook):
    message = track(context={"campaign": {"source": "google", "medium": "cpc", "name": "q4", "term": "crm"}})

    assert to_event(message, playbook, NOW).touch == {"source": "google", "medium": "cpc", "campaign": "q4", "term": "crm"}


def test_utm_parameters_of_the_page_address_are_the_campaign_when_the_context_has_none():
    touch = touch_of({}, {"url": "https://seller.example/pricing?utm_source=linkedin&utm_medium=social&utm_campaign=launch"})

    assert touch == {"source": "linkedin", "medium": "social", "campaign": "launch",
                     "url": "https://seller.example/pricing?utm_source=linkedin&utm_medium=social&utm_campaign=launch"}


def test_another_site_that_referred_the_visit_is_a_referral_touch():
    touch = touch_of({"page": {"referrer": "https://news.example/story", "url": "https://seller.example/"}}, {})

    assert touch == {"source": "news.example", "medium": "referral", "referrer": "https://news.example/story",
                     "url": "https://seller.example/"}


@pytest.mark.parametrize("properties", [
    {"url": "https://seller.example/pricing", "referrer": "https://seller.example/"},  # inside the site
    {"url": "https://seller.example/pricing"},  # direct
    {"url": "not a url[", "referrer": 42},
])
def test_a_visit_from_inside_the_site_or_from_nowhere_is_no_touch(properties):
    assert touch_of({}, properties) is None


def test_a_group_message_keeps_its_traits_for_the_account_and_never_as_the_persons_fields(playbook):
    got = to_event({"type": "group", "userId": "u-1", "groupId": "g-1", "traits": {"name": "Acme", "industry": "software"},
                    "context": {"traits": {"email": "ada@acme.example", "title": "CTO"}}}, playbook, NOW)

    assert got.group_id == "g-1" and got.properties["traits"] == {"name": "Acme", "industry": "software"}
    assert got.traits == {"title": "CTO"} and got.email == "ada@acme.example"


def test_a_group_message_without_a_group_id_is_refused(playbook):
    assert "groupId" in refusal({"type": "group", "userId": "u-1"}, playbook)


def test_ids_with_a_nul_character_and_overlong_event_names_are_refused(playbook):
    assert "NUL" in refusal(track(anonymousId="a\x00b"), playbook)
    assert "longer than 100" in refusal(track(event="x" * 101), playbook)


# --- batches --------------------------------------------------------------------------------------------


def test_the_batch_context_and_integrations_are_merged_into_each_message_the_messages_own_keys_winning():
    body = {"batch": [{"type": "track", "context": {"ip": "10.0.0.9"}}, {"type": "page"}, "not an object"],
            "context": {"ip": "10.0.0.1", "library": {"name": "analytics-python"}}, "integrations": {"All": True}}

    first, second, third = batch_messages(body)

    assert first["context"] == {"ip": "10.0.0.9", "library": {"name": "analytics-python"}}
    assert second["context"] == {"ip": "10.0.0.1", "library": {"name": "analytics-python"}}
    assert first["integrations"] == second["integrations"] == {"All": True}
    assert third == "not an object"  # refused later, on its own


def test_a_single_call_is_one_message_of_the_calls_type():
    assert batch_messages({"type": "page", "userId": "u"}, "track") == [{"type": "track", "userId": "u"}]


@pytest.mark.parametrize("body", [[], {"batch": {}}, {"messages": []}, "text"])
def test_a_body_without_a_batch_list_is_refused(body):
    with pytest.raises(InvalidMessage):
        batch_messages(body)
