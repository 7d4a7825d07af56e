"""The home dashboard (issue 15 §7): the page users land on after signing in. Every role may see it; each
handler still checks the role on the server. The figures come from app/services/campaigns/dashboard.py."""

from __future__ import annotations

import reflex as rx

from app.db import session_scope
from app.domain import permissions as perm
from app.services.campaigns import dashboard as dashboard_service
from state.base import AppState
from state.guard import current_actor, requires
from state.rows import as_text


class DashboardState(AppState):
    days: str = str(dashboard_service.DEFAULT_WINDOW)  # "7" | "30" | "90" (the segmented control's value)
    period: str = ""  # "Nov 7 – Dec 6, 2026 (UTC)"
    totals: dict[str, str] = {}
    rows: list[dict] = []  # one per day, oldest first: the chart's data (numbers)
    channels: list[dict[str, str]] = []
    attention: list[dict[str, str]] = []
    loaded: bool = False

    def _refresh(self) -> None:
        with session_scope() as session:
            result = dashboard_service.dashboard(session=session, actor=current_actor(), days=self.days)
        self.period = (
            f"{result.since:%b} {result.since.day} – {result.until:%b} {result.until.day}, {result.until.year}"
        )
        self.totals = {
            "sent": f"{result.sent:,}",
            "delivered": f"{result.delivered:,}",
            "read": f"{result.read:,}",
            "failed": f"{result.failed:,}",
            "replies": f"{result.replies:,}",
            "opt_outs": f"{result.opt_outs:,}",
            "delivery_rate": result.delivery_rate,
            "read_rate": result.read_rate,
        }
        self.rows = result.per_day
        self.channels = as_text(result.channels)
        self.attention = as_text(result.attention)
        self.loaded = True

    @requires(perm.CAMPAIGNS_VIEW)
    def load(self):
        self._refresh()

    @requires(perm.CAMPAIGNS_VIEW)
    def set_window(self, days: str | list[str]):
        try:
            self.days = str(dashboard_service.window_days(days))
        except dashboard_service.DashboardError as exc:
            return rx.toast.error(str(exc))
        self._refresh()
