"""Whether sending can progress right now, for the campaign pages' banner (components/health_banner.py).

`hubcast run` restarts a worker that crashed (app/supervisor.py) and says so in its status file
(app/health.py). While the worker is not running, campaigns cannot send: instead of letting the
progress bars stall silently, the campaign pages say "Sending is paused while the worker restarts".

`watch_health` runs when the banner mounts; it reads the status once, then starts `poll_health`, a
background task that re-reads it every POLL_INTERVAL_S (a small local file, no database) until the tab
moves to another page or closes, or a newer mount started another poller (a generation number).
"""

from __future__ import annotations

import asyncio

import reflex as rx

from app import health
from app.domain import permissions as perm
from components import routes
from state.base import AppState
from state.campaigns import tab_is_open
from state.guard import requires

POLL_INTERVAL_S = 2.0
AWAY_POLLS = 3  # polls off the campaign pages before the poller ends


class SystemHealthState(AppState):
    worker_paused: bool = False
    _poll_generation: int = 0

    @requires(perm.CAMPAIGNS_VIEW)
    def watch_health(self):
        self.worker_paused = health.worker_paused()
        return SystemHealthState.poll_health

    @rx.event(background=True)
    @requires(perm.CAMPAIGNS_VIEW)
    async def poll_health(self):
        async with self:
            self._poll_generation += 1
            generation = self._poll_generation
            token = self.router.session.client_token
        away = 0
        while True:
            await asyncio.sleep(POLL_INTERVAL_S)
            async with self:
                if self._poll_generation != generation:
                    return  # a newer poller took over
                # The router path is the one of the tab's last event, which right after a sign-in can still be
                # the previous page's: comparing with the path seen at start ended some pollers at once. Stop
                # only once the tab has been off the campaign pages for a few polls in a row.
                away = 0 if self.router.url.path.startswith(routes.CAMPAIGNS) else away + 1
                if away >= AWAY_POLLS:
                    return
            if not await tab_is_open(token):
                return
            paused = await asyncio.to_thread(health.worker_paused)
            async with self:
                if self._poll_generation != generation:
                    return
                if self.worker_paused != paused:
                    self.worker_paused = paused
