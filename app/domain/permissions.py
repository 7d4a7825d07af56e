"""Roles as sets of capabilities, checked on the server at every entry point.

The UI hides what a role cannot do, but only these checks protect anything: every State handler and
every service asks `require(role, capability)` before reading or changing data.
"""

from __future__ import annotations

from typing import Protocol

ADMIN, ADVANCED, BASIC = "admin", "advanced", "basic"
ROLES: tuple[str, ...] = (ADMIN, ADVANCED, BASIC)
ROLE_LABELS = {ADMIN: "Admin", ADVANCED: "Advanced user", BASIC: "Basic user"}

# Capabilities
CAMPAIGNS_VIEW = "campaigns:view"
CAMPAIGNS_EDIT = "campaigns:edit"  # create and edit drafts
CAMPAIGNS_SEND = "campaigns:send"  # send, schedule, pause, cancel
AUDIENCES_VIEW = "audiences:view"  # see contacts, lists, segments
AUDIENCES_MANAGE = "audiences:manage"  # create/change lists, segments, contacts, imports
TEMPLATES_VIEW = "templates:view"
TEMPLATES_MANAGE = "templates:manage"
CHANNELS_VIEW = "channels:view"  # see connected channels (no secrets)
CHANNELS_MANAGE = "channels:manage"
USERS_MANAGE = "users:manage"
AUDIT_VIEW = "audit:view"  # the audit log page (admins)
ACCOUNT_OWN = "account:own"  # change one's own password (every signed-in user)

ALL_CAPABILITIES: frozenset[str] = frozenset(
    {
        CAMPAIGNS_VIEW,
        CAMPAIGNS_EDIT,
        CAMPAIGNS_SEND,
        AUDIENCES_VIEW,
        AUDIENCES_MANAGE,
        TEMPLATES_VIEW,
        TEMPLATES_MANAGE,
        CHANNELS_VIEW,
        CHANNELS_MANAGE,
        USERS_MANAGE,
        AUDIT_VIEW,
        ACCOUNT_OWN,
    }
)

CAPABILITIES_BY_ROLE: dict[str, frozenset[str]] = {
    ADMIN: ALL_CAPABILITIES,
    ADVANCED: ALL_CAPABILITIES - {USERS_MANAGE, CHANNELS_MANAGE, AUDIT_VIEW},
    # Basic users run campaigns against audiences that already exist; they never shape audiences.
    BASIC: frozenset(
        {CAMPAIGNS_VIEW, CAMPAIGNS_EDIT, CAMPAIGNS_SEND, AUDIENCES_VIEW, TEMPLATES_VIEW, CHANNELS_VIEW, ACCOUNT_OWN}
    ),
}


class Actor(Protocol):
    """Who acts, as the layers above the services see a signed-in user (app.models.User satisfies it).

    Only an identity to hand back to the services, which re-read the user from the database; the
    `role` here is for display and for hiding what the role cannot do, never a permission by itself."""

    id: int | None
    email: str
    name: str
    role: str


class PermissionDenied(Exception):
    """The actor lacks a capability. The message is safe to show to the user."""

    def __init__(self, capability: str, message: str = "You don't have permission to do that."):
        super().__init__(message)
        self.capability = capability


class NotAuthenticated(PermissionDenied):
    def __init__(self) -> None:
        super().__init__("session", "Your session has ended. Please sign in again.")


def capabilities(role: str | None) -> frozenset[str]:
    return CAPABILITIES_BY_ROLE.get(role or "", frozenset())


def can(role: str | None, capability: str) -> bool:
    if capability not in ALL_CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}")
    return capability in capabilities(role)


def require(role: str | None, capability: str) -> None:
    if not can(role, capability):
        raise PermissionDenied(capability)


def validate_role(role: str) -> str:
    role = (role or "").strip().lower()
    if role not in ROLES:
        raise ValueError(f"Role must be one of {', '.join(ROLES)}, not {role!r}")
    return role
