"""Re-read a campaign's template from WhatsApp after Meta refused it as a whole (issue 12: #132015 paused,
#132016 disabled, #132001 missing translation...): the stored status then says why the campaign paused,
and the resume check (`readiness`) refuses until Meta approves it again. Runs the channel's normal
template sync (`channels.templates.sync_templates`, as the operator's CLI does: no acting user)."""

from __future__ import annotations

import logging

from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.services.channels.templates import TemplateError, sync_templates

log = logging.getLogger(__name__)


def resync_channel_templates(engine: Engine, channel_id: int) -> bool:
    """True when the sync ran; a failure is logged (the campaign is paused either way)."""
    try:
        with Session(engine) as session:
            sync_templates(session=session, actor=None, channel_id=channel_id)
            session.commit()
        return True
    except TemplateError as exc:
        log.warning("channel %s: template re-sync after a template error failed: %s", channel_id, exc)
    except Exception:
        log.exception("channel %s: template re-sync after a template error failed", channel_id)
    return False
