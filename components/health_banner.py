"""The banner the campaign pages show while the worker restarts (state/system_health.py)."""

import reflex as rx

from state.system_health import SystemHealthState

WORKER_PAUSED_TEXT = "Sending is paused while the worker restarts."


def worker_paused_banner() -> rx.Component:
    """Nothing while sending can progress; a warning while the supervised worker is down. It mounts with
    the page (the poller starts then) and is announced to screen readers as a status."""
    return rx.box(
        rx.cond(
            SystemHealthState.worker_paused,
            rx.callout(
                WORKER_PAUSED_TEXT + " Campaigns continue by themselves once it is back.",
                icon="triangle-alert",
                color_scheme="amber",
                role="status",
                id="worker-paused-banner",
                width="100%",
            ),
        ),
        on_mount=SystemHealthState.watch_health,
        # Hidden (no box, so no gap in the page's stack) while there is nothing to say; mounted either way.
        display=rx.cond(SystemHealthState.worker_paused, "block", "none"),
        width="100%",
    )
