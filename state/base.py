"""The root state: who is signed in (resolved server-side on every call) and the page guard."""

from __future__ import annotations

import reflex as rx

from app.db import session_scope
from app.domain import permissions as perm
from app.domain.permissions import Actor, NotAuthenticated, PermissionDenied
from app.services.accounts import auth, cookies
from components import routes
from state.guard import public_handler

SESSION_COOKIE = cookies.SESSION_COOKIE  # `__Host-hubcast_session` when the public URL is https
LOGIN_ROUTE = routes.LOGIN


class AppState(rx.State):
    # The browser holds only an opaque random secret issued at login; the server maps it to a user.
    # Trusted only with the same cookie in the websocket handshake (`_bound_secret`): a tab token alone is nobody.
    session_secret: str = rx.Cookie(
        "", name=SESSION_COOKIE, path="/", same_site=cookies.SAME_SITE, secure=cookies.SECURE or None
    )
    # The socket that signed in: the browser writes the cookie after its socket opened, so this one
    # connection is trusted until it reconnects (then its handshake carries the cookie). Backend only.
    _signed_in_sid: str = ""
    # Display only: the menu reads these. Nothing on the server ever trusts them.
    user_email: str = ""
    user_name: str = ""
    user_role: str = ""
    signed_in: bool = False

    # --- server-side checks (underscore: not callable from the browser) ---------------------

    def _client_ip(self) -> str:
        try:
            return self.router.session.client_ip or ""
        except AttributeError:  # pragma: no cover
            return ""

    def _bound_secret(self) -> str:
        """The session secret, only when this event's connection presented it (issue 13 item 4)."""
        try:
            sid, cookie_header = self.router.session.session_id, self.router.headers.cookie
        except AttributeError:  # pragma: no cover
            sid, cookie_header = "", ""
        return cookies.bound_secret(
            state_secret=self.session_secret,
            handshake_cookie_header=cookie_header,
            signed_in_here=bool(self._signed_in_sid) and self._signed_in_sid == sid,
        )

    def _resolve_user(self) -> Actor | None:
        secret = self._bound_secret()
        if not secret:
            return None
        with session_scope() as session:
            return auth.resolve_session(session=session, secret=secret)

    def _authorize(self, capability: str, handler: str):
        """(None, user) when allowed, else (events to return, None). Refusals are audit-logged."""
        user = self._resolve_user()
        try:
            if user is None:
                raise NotAuthenticated()
            perm.require(user.role, capability)
            return None, user
        except PermissionDenied as exc:
            with session_scope() as session:  # a stranger's refusals are counted per minute, not a row each
                auth.record_refused_call(
                    session=session,
                    user=user,
                    secret=self._bound_secret(),
                    handler=f"{type(self).__name__}.{handler}",
                    capability=capability,
                    ip=self._client_ip(),
                )
            if isinstance(exc, NotAuthenticated):
                self._clear_identity()
                if not self.session_secret:  # never signed in: just go to the login page, no alarm
                    return rx.redirect(LOGIN_ROUTE), None
                return [rx.toast.error(str(exc)), rx.redirect(LOGIN_ROUTE)], None
            return rx.toast.error(str(exc)), None

    def _clear_identity(self) -> None:
        self.user_email = self.user_name = self.user_role = ""
        self.signed_in = False

    def _show_identity(self, user: Actor) -> None:
        self.user_email, self.user_name, self.user_role = user.email, user.name or user.email, user.role
        self.signed_in = True

    # --- handlers ----------------------------------------------------------------------------

    @public_handler("reads only the caller's own session; redirects to the login page when there is none")
    def check_session(self):
        user = self._resolve_user()
        if user is None:
            self._clear_identity()
            return rx.redirect(LOGIN_ROUTE)
        self._show_identity(user)

    @public_handler("ends only the caller's own session (the one its connection's cookie names)")
    def logout(self):
        secret = self._bound_secret()
        if not secret:  # a tab token without the cookie must not end (or clear) the real tab's session
            return rx.redirect(LOGIN_ROUTE)
        with session_scope() as session:
            auth.logout(session=session, secret=secret)
        self._clear_identity()
        self.session_secret = self._signed_in_sid = ""
        return [rx.remove_cookie(SESSION_COOKIE, dict(cookies.REMOVE_OPTIONS)), rx.redirect(LOGIN_ROUTE)]

    # --- menu helpers (display only) ---------------------------------------------------------

    @rx.var
    def is_admin(self) -> bool:
        return self.user_role == perm.ADMIN

    @rx.var
    def can_manage_audiences(self) -> bool:
        return perm.AUDIENCES_MANAGE in perm.capabilities(self.user_role)

    @rx.var
    def can_edit_campaigns(self) -> bool:
        return perm.CAMPAIGNS_EDIT in perm.capabilities(self.user_role)

    @rx.var
    def role_label(self) -> str:
        return perm.ROLE_LABELS.get(self.user_role, "")

    @rx.var
    def user_initials(self) -> str:
        parts = (self.user_name or self.user_email).replace("@", " ").split()
        return "".join(p[0] for p in parts[:2]).upper() or "?"
