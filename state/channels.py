"""Channels page (secrets never leave the server)."""

from __future__ import annotations

from app.db import session_scope
from app.domain import permissions as perm
from app.services import catalog
from state.base import AppState
from state.guard import current_actor, requires
from state.rows import as_text


class ChannelsState(AppState):
    rows: list[dict[str, str]] = []
    loaded: bool = False

    @requires(perm.CHANNELS_VIEW)
    def load(self):
        with session_scope() as session:
            self.rows = as_text(catalog.channels_overview(session=session, actor=current_actor()))
        self.loaded = True
