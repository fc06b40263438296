"""The reports and content over real HTTP (SQLite and PostgreSQL), and the `leadrelay report`
command: JSON and CSV answers, the meeting page, content items and shares, and bad input answered
with a clear message naming the parameter."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import httpx

from .cli import Run, assert_clean_refusal
from .server import Server
from .test_hand_off_api import (
    AMERICAS_COUNTRY,
    assert_error,
    demo_request,
    identify,
    open_deal,
    send,
)

REPORTS = ("funnel", "velocity", "sources", "content", "sla")


def history(server: Server) -> None:
    """Three leads today: two ask for a demo (fast-tracked to SAL), one of them is won for 500."""
    send(server, *demo_request("won@firm.example", country=AMERICAS_COUNTRY, source="webinar"),
         *demo_request("open@firm.example", country=AMERICAS_COUNTRY, source="webinar"),
         identify("cold@firm.example", country=AMERICAS_COUNTRY, source="paid search"))
    with server.admin() as admin:
        deal = open_deal(admin, "won@firm.example")["id"]
        for to in ("sql", "opportunity"):
            assert admin.post(f"/api/v1/deals/{deal}/move", json={"to": to}).status_code == 200
        assert admin.post(f"/api/v1/deals/{deal}/win", json={"value": 500}).status_code == 200


def rows(answer: httpx.Response) -> list[dict[str, str]]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(answer.text)))


def test_every_report_answers_json_with_todays_figures(server: Server) -> None:
    history(server)
    with server.admin() as admin:
        funnel = admin.get("/api/v1/reports/funnel", params={"breakdown": "source"}).json()
        sources = admin.get("/api/v1/reports/sources").json()
        velocity = admin.get("/api/v1/reports/velocity", params={"breakdown": "team"})
        content = admin.get("/api/v1/reports/content", params={"breakdown": "rep"})
        mqls = admin.get("/api/v1/reports/funnel", params={"cohort": "mql"}).json()

    reached = {stage["stage"]: stage["reached"] for stage in funnel["total"]["stages"]}
    assert reached == {"lead": 3, "mql": 2, "sal": 2, "sql": 1, "opportunity": 1, "customer": 1}
    assert funnel["total"]["end_to_end"] == 1 / 3 and funnel["total"]["won_value"] == 500
    assert {g["group"]: g["leads"] for g in funnel["groups"]} == {"webinar": 2, "paid search": 1}
    assert mqls["total"]["leads"] == 2
    assert sources["totals"] == {"lead": 3, "mql": 2, "sql": 1, "won": 1} and sources["won_value"] == 500
    assert {row["channel"]: row["won"] for row in sources["channels"]} == {"webinar": 1, "paid search": 0}
    assert velocity.status_code == 200 and velocity.json()["sales_cycle"]["overall"]["count"] == 1
    assert content.status_code == 200 and content.json()["items"] == 0


def test_every_report_answers_csv_when_asked(server: Server) -> None:
    history(server)
    with server.admin() as admin:
        stages = rows(admin.get("/api/v1/reports/funnel", headers={"Accept": "text/csv"}))
        leakage = admin.get("/api/v1/reports/funnel", params={"format": "csv", "table": "leakage"})
        others = {name: admin.get(f"/api/v1/reports/{name}", params={"format": "csv"}) for name in REPORTS}

    assert [(row["stage"], row["reached"]) for row in stages] == [
        ("lead", "3"), ("mql", "2"), ("sal", "2"), ("sql", "1"), ("opportunity", "1"), ("customer", "1")]
    assert leakage.text.startswith("group,stage,to,reason,count\r\n")
    assert 'filename="funnel-leakage.csv"' in leakage.headers["content-disposition"]
    headers = {name: answer.text.splitlines()[0] for name, answer in others.items()}
    assert headers == {
        "funnel": "group,stage,name,reached,conversion,now_in,end_to_end",
        "velocity": "measure,stage,month,count,median_seconds,p75_seconds,p90_seconds",
        "sources": "source,model,leads,mqls,sqls,won,won_value",
        "content": "id,kind,key,title,shares,leads_shared_with,shares_ever,won,lost,win_rate,low,high,few,never_shared",
        "sla": "commitment,group,met,breached,running,stopped,rate",
    }


def test_bad_report_parameters_are_refused_naming_the_parameter(server: Server) -> None:
    with server.admin() as admin:
        backwards = admin.get("/api/v1/reports/funnel", params={"from": "2026-03-02", "to": "2026-03-01"})
        not_a_date = admin.get("/api/v1/reports/velocity", params={"from": "2026-02-30"})
        unknown = admin.get("/api/v1/reports/sources", params={"breakdown": "segment"})
        cohort = admin.get("/api/v1/reports/funnel", params={"cohort": "recycled"})
        table = admin.get("/api/v1/reports/content", params={"format": "csv", "table": "nothing"})
        anonymous = httpx.get(f"{server.url}/api/v1/reports/funnel")

    assert_error(backwards, 400, "invalid_period")
    assert "from: 2026-03-02 is after to (2026-03-01)" in backwards.json()["message"]
    assert not_a_date.status_code == 422 and not_a_date.json()["message"].startswith("query.from:")
    assert unknown.status_code == 422 and "query.breakdown" in unknown.json()["message"]
    assert_error(cohort, 400, "invalid_cohort")
    assert_error(table, 400, "invalid_table")
    assert "one of items, usage" in table.json()["message"]
    assert anonymous.status_code == 401


def test_the_meeting_page_is_html_that_fetches_nothing(server: Server) -> None:
    history(server)
    with server.admin() as admin:
        page = admin.get("/api/v1/reports/meeting")

    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script" not in page.text and page.text.count("<svg ") == 7
    assert not [a for a in re.findall(r'(?:src|href)="([^"]*)"', page.text) if not a.startswith("#")]


def test_content_items_and_the_shares_reps_log(server: Server) -> None:
    history(server)
    with server.admin() as admin:
        created = admin.post("/api/v1/content", json={"kind": "asset", "key": "roi-guide", "title": "ROI guide"})
        again = admin.post("/api/v1/content", json={"kind": "asset", "key": "roi-guide"})
        item = created.json()
        shared = admin.post("/api/v1/content/shares", json={"item_id": item["id"], "email": "open@firm.example",
                                                            "by": "maya.johnson@sales.leadrelay.example"})
        by_key = admin.post("/api/v1/content/shares", json={"kind": "asset", "key": "roi-guide",
                                                            "email": "won@firm.example"})
        nobody = admin.post("/api/v1/content/shares", json={"item_id": item["id"], "email": "nobody@firm.example"})
        missing = admin.get("/api/v1/content/999999")
        listed = admin.get("/api/v1/content").json()["items"]
        shares = admin.get("/api/v1/content/shares", params={"item_id": item["id"]}).json()["items"]
        report = admin.get("/api/v1/reports/content").json()
        archived = admin.patch(f"/api/v1/content/{item['id']}", json={"archived": True}).json()
        after = admin.get("/api/v1/reports/content").json()

    assert created.status_code == 201 and created.headers["location"] == f"/api/v1/content/{item['id']}"
    assert_error(again, 400, "content_item_exists")
    assert shared.status_code == 201 and shared.json()["deal_id"] is not None  # the lead's open deal
    assert by_key.status_code == 201 and by_key.json()["by"] == "api:admin"
    assert_error(nobody, 404, "lead_not_found")
    assert_error(missing, 404, "content_item_not_found")
    assert [(i["key"], i["shares"]) for i in listed] == [("roi-guide", 2)]
    assert [s["email"] for s in shares] == ["won@firm.example", "open@firm.example"]
    assert (report["items"], report["items_shared"], report["used_by_sales"]) == (1, 1, 1.0)
    assert archived["archived_at"] is not None and after["items"] == 0


# --- the command ----------------------------------------------------------------------------


def test_the_report_command_writes_the_html_its_charts_and_csvs(leadrelay: Run, tmp_path: Path) -> None:
    result = leadrelay("report", "--from", "2026-03-01", "--to", "2026-03-31", "--out", "march.html", "--png",
                       "--csv", "tables")

    assert result.returncode == 0, result.stderr
    said = " ".join(result.stdout.split())
    assert "Meeting report for 2026-03-01 – 2026-03-31 (UTC), compared with 2026-01-29 – 2026-02-28" in said
    assert "No figure moved enough to mention." in said  # an empty database
    html = (tmp_path / "march.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html
    assert len(list(tmp_path.glob("march-*.png"))) == 7
    assert {path.name for path in (tmp_path / "tables").iterdir()} >= {
        "funnel-stages.csv", "funnel-leakage.csv", "velocity-durations.csv", "sources-attribution.csv",
        "content-items.csv", "sla-compliance.csv", "meeting-headline.csv"}


def test_the_report_command_refuses_bad_dates_clearly(leadrelay: Run) -> None:
    backwards = leadrelay("report", "--from", "2026-03-02", "--to", "2026-03-01")
    assert_clean_refusal(backwards, "error: from: 2026-03-02 is after to (2026-03-01)")
    not_a_date = leadrelay("report", "--from", "2026-02-30")
    assert not_a_date.returncode == 2 and "Traceback" not in not_a_date.stderr
    assert "Invalid value for '--from'" in not_a_date.stderr and "'2026-02-30'" in not_a_date.stderr
    unknown = leadrelay("content", "share", "asset", "roi-guide", "--lead", "x@firm.example", "--by", "rep@x.example")
    assert_clean_refusal(unknown, "there is no content item")
