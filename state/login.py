"""The login form."""

from __future__ import annotations

import reflex as rx

from app.services.accounts import auth, cookies, sign_in
from components import routes
from state.base import AppState
from state.guard import public_handler

HOME_ROUTE = routes.DASHBOARD


DEVICE_COOKIE = cookies.DEVICE_COOKIE
DEVICE_COOKIE_MAX_AGE = 180 * 24 * 3600


class LoginState(AppState):
    error: str = ""
    busy: bool = False
    # Set at a successful login: marks this browser as one the account's owner used, so guessers being
    # slowed down (app/services/accounts/login_throttle.py) never keep the owner out. Signed, not a secret
    # that signs anyone in.
    device_token: str = rx.Cookie(
        "",
        name=DEVICE_COOKIE,
        path="/",
        same_site=cookies.SAME_SITE,
        secure=cookies.SECURE or None,
        max_age=DEVICE_COOKIE_MAX_AGE,
    )

    @public_handler("the login form: checks credentials, issues a new server-generated session")
    async def submit(self, form: dict):
        email = str(form.get("email", ""))[:300]
        password = str(form.get("password", ""))[:300]
        try:
            # Off the event loop, in a bounded pool (Argon2id would stall every other tab); it also ends
            # whatever session this browser had: a login always starts a fresh one.
            result = await sign_in.sign_in(
                email=email,
                password=password,
                ip=self._client_ip(),
                user_agent=self.router.headers.user_agent or "",
                device_token=self.device_token,
                previous_secret=self._bound_secret(),
            )
        except auth.LoginFailed as exc:
            self.error = str(exc)
            return
        self.error = ""
        self.session_secret = result.session_secret
        self._signed_in_sid = self.router.session.session_id
        self.device_token = result.device_token
        self._show_identity(result.user)
        return rx.redirect(HOME_ROUTE)

    @public_handler("redirects an already signed-in browser away from the login page")
    def on_login_page(self):
        self.error = ""
        if self._resolve_user() is not None:
            return rx.redirect(HOME_ROUTE)
