"""Read-only overview pages: lists, segments, templates, channels."""

from __future__ import annotations

from app.db import session_scope
from app.domain import permissions as perm
from app.services import catalog
from state.base import AppState
from state.guard import current_actor, requires


def _as_text(rows: list[dict]) -> list[dict[str, str]]:
    return [{k: ("yes" if v is True else "" if v is False else str(v)) for k, v in row.items()} for row in rows]


class ListsState(AppState):
    rows: list[dict[str, str]] = []
    loaded: bool = False

    @requires(perm.AUDIENCES_VIEW)
    def load(self):
        with session_scope() as session:
            self.rows = _as_text(catalog.lists_overview(session=session, actor=current_actor()))
        self.loaded = True


class SegmentsState(AppState):
    rows: list[dict[str, str]] = []
    loaded: bool = False

    @requires(perm.AUDIENCES_VIEW)
    def load(self):
        with session_scope() as session:
            self.rows = _as_text(catalog.segments_overview(session=session, actor=current_actor()))
        self.loaded = True


class TemplatesState(AppState):
    rows: list[dict[str, str]] = []
    loaded: bool = False

    @requires(perm.TEMPLATES_VIEW)
    def load(self):
        with session_scope() as session:
            self.rows = _as_text(catalog.templates_overview(session=session, actor=current_actor()))
        self.loaded = True


class ChannelsState(AppState):
    rows: list[dict[str, str]] = []
    loaded: bool = False

    @requires(perm.CHANNELS_VIEW)
    def load(self):
        with session_scope() as session:
            self.rows = _as_text(catalog.channels_overview(session=session, actor=current_actor()))
        self.loaded = True
