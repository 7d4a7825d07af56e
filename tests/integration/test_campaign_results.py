"""A campaign's results: funnel numbers, the recipients table (server-side filter/search/paging) and the
CSV export over real HTTP (session cookie checked on the server; spreadsheet formulas neutralised)."""

from __future__ import annotations

import asyncio
import csv
import io

import httpx
import pytest

from app.http_api import build_http_api
from app.models import Campaign, CampaignRecipient
from app.services.accounts import auth
from app.services.campaigns import results as campaign_results
from app.services.sending import progress as campaign_progress


@pytest.fixture()
def results(session, make_user, redis_client):
    user = make_user("basic")
    campaign = Campaign(name="Spring =sale", status="sending")
    session.add(campaign)
    session.commit()
    rows = [
        CampaignRecipient(
            campaign_id=campaign.id,
            address="+33612345601",
            status="read",
            message_id="wamid.1",
            variables={"first_name": '=HYPERLINK("http://evil")'},
        ),
        CampaignRecipient(campaign_id=campaign.id, address="+33612345602", status="delivered", message_id="wamid.2"),
        CampaignRecipient(
            campaign_id=campaign.id,
            address="+33612345603",
            status="failed",
            message_id="wamid.3",
            error_code=131026,
            error_title="@Message undeliverable",
        ),
        CampaignRecipient(campaign_id=campaign.id, address="+44770090001", status="sent", message_id="wamid.4"),
        CampaignRecipient(campaign_id=campaign.id, address="+44770090002", status="queued"),
    ]
    session.add_all(rows)
    session.commit()
    campaign_progress.refresh_counters(session, campaign.id)
    session.commit()
    secret = auth.login(
        session=session, redis_client=redis_client, email=user.email, password="correct horse battery"
    ).session_secret
    return {"user": user, "campaign": campaign, "secret": secret}


def test_summary_shows_the_funnel_with_rates(session, results):
    s = campaign_results.campaign_summary(session=session, actor=results["user"], campaign_id=results["campaign"].id)
    assert (s["total"], s["sent"], s["delivered"], s["read"], s["failed"], s["queued"]) == (5, 3, 2, 1, 1, 1)
    assert s["progress"] == 80 and s["delivered_rate"] == "40.0%" and s["live"] is True


def test_recipients_are_filtered_searched_and_paged_on_the_server(session, results):
    args = {"session": session, "actor": results["user"], "campaign_id": results["campaign"].id}
    failed = campaign_results.recipients_page(**args, status="failed")
    assert [(r["number"], r["error_code"], r["error_title"]) for r in failed.rows] == [
        ("+33612345603", 131026, "@Message undeliverable")
    ]
    # Each row carries the status name users know (the table shows it, not the code).
    every = campaign_results.recipients_page(**args)
    assert {r["status"]: r["status_label"] for r in every.rows} == {
        "read": "Read",
        "delivered": "Delivered",
        "failed": "Failed",
        "sent": "Sent",
        "queued": "Queued",
    }
    uk = campaign_results.recipients_page(**args, search="+44 7700")
    assert uk.total == 2
    paged = campaign_results.recipients_page(**args, page=2, page_size=2)
    assert (
        paged.total == 5 and paged.pages == 3 and [r["number"] for r in paged.rows] == ["+33612345603", "+44770090001"]
    )
    with pytest.raises(ValueError):
        campaign_results.recipients_page(**args, status="draft")
    with pytest.raises(campaign_results.CampaignNotFound):
        campaign_results.recipients_page(session=session, actor=results["user"], campaign_id="nope")


def _get(path: str, cookie: str | None = None) -> httpx.Response:
    async def go():
        transport = httpx.ASGITransport(app=build_http_api())
        cookies = {"hubcast_session": cookie} if cookie else None
        async with httpx.AsyncClient(transport=transport, base_url="http://hubcast.test", cookies=cookies) as c:
            return await c.get(path)

    return asyncio.run(go())


def test_csv_export_needs_a_live_session(results, session):
    path = f"/exports/campaigns/{results['campaign'].id}.csv"
    assert _get(path).status_code == 401
    assert _get(path, "forged-cookie").status_code == 401
    assert _get("/exports/campaigns/999.csv", results["secret"]).status_code == 404
    auth.logout(session=session, secret=results["secret"])
    session.commit()
    assert _get(path, results["secret"]).status_code == 401


def test_csv_export_streams_every_row_with_formulas_neutralised(results):
    response = _get(f"/exports/campaigns/{results['campaign'].id}.csv", results["secret"])
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text.lstrip("\ufeff"))))
    assert rows[0] == campaign_results.EXPORT_COLUMNS
    assert len(rows) == 6
    by_number = {r[0]: r for r in rows[1:]}
    assert by_number["'+33612345603"][3:5] == ["131026", "'@Message undeliverable"]
    assert by_number["'+33612345601"][9] == 'first_name==HYPERLINK("http://evil")'  # not at the cell start
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
