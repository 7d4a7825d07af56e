"""Parsing Meta's webhook bodies into status updates and inbound messages."""

from __future__ import annotations

from datetime import UTC, datetime

from app.whatsapp.webhooks import parse_webhook


def envelope(value, field="messages"):
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "200",
                "changes": [
                    {
                        "field": field,
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "15550100000", "phone_number_id": "100"},
                            **value,
                        },
                    }
                ],
            }
        ],
    }


def test_statuses_with_callback_data_pricing_and_errors():
    events = parse_webhook(
        envelope(
            {
                "statuses": [
                    {
                        "id": "wamid.A",
                        "status": "delivered",
                        "timestamp": "1750000000",
                        "recipient_id": "33612345678",
                        "biz_opaque_callback_data": "r:42",
                        "pricing": {"billable": True, "pricing_model": "PMP", "category": "marketing"},
                        "conversation": {"id": "c1", "origin": {"type": "marketing"}},
                    },
                    {
                        "id": "wamid.B",
                        "status": "failed",
                        "timestamp": "1750000001",
                        "recipient_id": "33600000000",
                        "errors": [
                            {
                                "code": 131026,
                                "title": "Message undeliverable",
                                "message": "Message undeliverable",
                                "error_data": {"details": "Message Undeliverable."},
                            }
                        ],
                    },
                    {"status": "sent"},  # malformed: skipped
                ]
            }
        )
    )
    assert not events.messages and len(events.statuses) == 2
    delivered, failed = events.statuses
    assert (delivered.message_id, delivered.status, delivered.recipient_id, delivered.phone_number_id) == (
        "wamid.A",
        "delivered",
        "33612345678",
        "100",
    )
    assert delivered.timestamp == datetime.fromtimestamp(1750000000, tz=UTC)
    assert delivered.biz_opaque_callback_data == "r:42" and delivered.pricing_category == "marketing"
    assert delivered.conversation_id == "c1" and delivered.errors == ()
    assert failed.biz_opaque_callback_data is None
    assert [(e.code, e.title, e.details) for e in failed.errors] == [
        (131026, "Message undeliverable", "Message Undeliverable.")
    ]


def test_inbound_text_and_button_replies():
    events = parse_webhook(
        envelope(
            {
                "contacts": [{"profile": {"name": "Ana"}, "wa_id": "33612345678"}],
                "messages": [
                    {
                        "from": "33612345678",
                        "id": "wamid.IN1",
                        "timestamp": "1750000002",
                        "type": "text",
                        "text": {"body": "STOP"},
                    },
                    {
                        "from": "33612345678",
                        "id": "wamid.IN2",
                        "timestamp": "1750000003",
                        "type": "button",
                        "button": {"text": "Not interested", "payload": "r:42:no"},
                        "context": {"from": "15550100000", "id": "wamid.A"},
                    },
                ],
            }
        )
    )
    stop, button = events.messages
    assert (stop.kind, stop.text, stop.from_wa_id, stop.profile_name) == ("text", "STOP", "33612345678", "Ana")
    assert (button.kind, button.text, button.payload, button.context_message_id) == (
        "button",
        "Not interested",
        "r:42:no",
        "wamid.A",
    )


def test_other_objects_fields_and_garbage_yield_nothing():
    assert parse_webhook(None).statuses == [] and parse_webhook([]).messages == []
    assert parse_webhook({"object": "page", "entry": []}).statuses == []
    assert parse_webhook(envelope({"statuses": [{"id": "w", "status": "sent"}]}, field="account_update")).statuses == []
    odd = parse_webhook(
        {"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": "nope"}]}, {}]}
    )
    assert odd.statuses == [] and odd.messages == []
