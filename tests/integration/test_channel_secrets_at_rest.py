"""Channel secrets are sealed in the database and read back in the clear only by the app."""

from sqlalchemy import text
from sqlmodel import select

from app.models import Channel


def test_channel_secrets_are_encrypted_in_the_database(session):
    session.add(
        Channel(
            name="Acme",
            kind="whatsapp_cloud",
            access_token="EAAG-token-123456",
            app_secret="0123456789abcdef0123456789abcdef",
            verify_token="verify-me-please",
        )
    )
    session.commit()
    raw = session.exec(text("SELECT access_token, app_secret, verify_token FROM channels WHERE name = 'Acme'")).one()
    for stored, secret in zip(raw, ("EAAG-token-123456", "0123456789abcdef0123456789abcdef", "verify-me-please")):
        assert secret not in stored and stored.startswith("enc1:")
    session.expire_all()
    channel = session.exec(select(Channel).where(Channel.name == "Acme")).one()
    assert (channel.access_token, channel.app_secret, channel.verify_token) == (
        "EAAG-token-123456",
        "0123456789abcdef0123456789abcdef",
        "verify-me-please",
    )
