"""Migration 0015 matches the replies already stored to their campaign, by the rule the campaign page uses:
the reply's context id is a wamid the campaign sent, and it came through that campaign's channel. (Replies
recorded after it get their campaign from `opt_out.record_inbound`.) On a SQLite file of its own."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text

from app.settings import PROJECT_ROOT


def _config(url: str) -> Config:
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def test_replies_stored_before_0015_get_their_campaign(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    cfg = _config(url)
    command.upgrade(cfg, "0014")
    engine = create_engine(url)
    with engine.begin() as conn:
        for cid in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO channels (id, name, kind, phone_number_id, business_account_id, display_phone_number, "
                    "access_token, app_secret, verify_token, api_base_url, api_version, messages_per_second, status, "
                    "last_error, created_at, updated_at) VALUES (:id, :name, 'sandbox', :id, '', '', '', '', '', '', "
                    "'', 1, 'connected', '', '2026-12-01', '2026-12-01')"
                ),
                {"id": cid, "name": f"Channel {cid}"},
            )
        conn.execute(
            text(
                "INSERT INTO campaigns (id, name, status, wizard_step, audience_kind, variable_mapping, timezone, "
                "pause_reason, created_at, updated_at, total_recipients, queued_count, sent_count, delivered_count, "
                "read_count, failed_count, unknown_count, replied_count, channel_id) VALUES (7, 'Autumn', 'sent', 3, "
                "'list', '{}', 'UTC', '', '2026-12-01', '2026-12-01', 1, 0, 1, 0, 0, 0, 0, 0, 1)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO campaign_recipients (campaign_id, address, variables, status, error_title, attempts, "
                "updated_at, message_id) VALUES (7, '+33600000001', '{}', 'read', '', 1, '2026-12-01', 'wamid.sent')"
            )
        )
        for message_id, channel_id, context in (
            ("wamid.reply", 1, "wamid.sent"),  # a reply to the campaign, through its channel
            ("wamid.other-channel", 2, "wamid.sent"),  # the same context through another channel: not its reply
            ("wamid.no-context", 1, None),
            ("wamid.unknown-context", 1, "wamid.never-sent"),
        ):
            conn.execute(
                text(
                    "INSERT INTO inbound_messages (channel_id, message_id, from_address, kind, text, received_at, "
                    "context_message_id) VALUES (:ch, :mid, '+33600000001', 'text', 'Hi', '2026-12-02', :ctx)"
                ),
                {"ch": channel_id, "mid": message_id, "ctx": context},
            )
    command.upgrade(cfg, "0015")
    with engine.connect() as conn:
        matched = dict(conn.execute(text("SELECT message_id, campaign_id FROM inbound_messages")).all())
    assert matched == {
        "wamid.reply": 7,
        "wamid.other-channel": None,
        "wamid.no-context": None,
        "wamid.unknown-context": None,
    }
    command.downgrade(cfg, "0014")  # and back
    engine.dispose()
