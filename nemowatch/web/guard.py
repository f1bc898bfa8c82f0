"""Who may see the page and who may change anything (docs/http.md, "Security").

- **Host**: on loopback without a login, only requests naming this machine (`localhost`,
  `127.0.0.1`, `[::1]`, the listen address) are served, so a web site whose name is made
  to resolve to 127.0.0.1 (DNS rebinding) cannot read the page from a browser here.
- **Login**, when `http.token` or `http.password_file` is set: an `Authorization: Bearer`
  header with the token, or the session cookie the login form sets (HttpOnly,
  SameSite=Strict) after the token or the password was typed. Without them, loopback
  needs none (`check` refuses any other address without one).
- **Changes** (retry, pause, resume) are POSTs only, refused (403) unless they come from
  this site: `Sec-Fetch-Site`, `Origin` or `Referer`, when the browser sends them, must be
  this origin, and the form must carry the CSRF token the page embeds. A request with the
  bearer header needs no CSRF token: browsers never add that header on their own.

The secrets are compared in constant time and never logged; the cookie and the CSRF
token are derived from a key made when the daemon starts (a restart logs people out).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request

from nemowatch.config import HttpSettings
from nemowatch.config.http import is_loopback
from nemowatch.config.models import split_listen

COOKIE = "nemowatch_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


class Guard:
    """The checks of one web page, with its process's key."""

    def __init__(self, settings: HttpSettings, password: str | None = None) -> None:
        self._token = settings.token.get_secret_value().strip() if settings.token else None
        self._password = password
        self._key = secrets.token_bytes(32)
        host, _port = split_listen(settings.listen)
        # without a login, loopback is the only guard: the name asked for must be ours
        # (with one, a rebinding site gets nothing without the token or the password, and
        # a reverse proxy on this machine may pass its public name)
        open_page = is_loopback(host) and not self.login_required
        self._hosts = LOOPBACK_HOSTS | {host.lower()} if open_page else None

    @property
    def login_required(self) -> bool:
        return self._token is not None or self._password is not None

    def _sign(self, purpose: str) -> str:
        return hmac.new(self._key, purpose.encode(), hashlib.sha256).hexdigest()

    # -- who is asking ---------------------------------------------------------------

    def host_allowed(self, request: Request) -> bool:
        """False for a loopback page asked for under another name (DNS rebinding)."""
        if self._hosts is None:
            return True
        name = request.headers.get("host", "")
        host = urlsplit(f"//{name}").hostname or ""
        return host.lower() in self._hosts or f"[{host.lower()}]" in self._hosts

    def bearer(self, request: Request) -> bool:
        """Whether the request carries the token in its Authorization header."""
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if self._token is None or scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(value.strip().encode(), self._token.encode())

    def logged_in(self, request: Request) -> bool:
        if not self.login_required or self.bearer(request):
            return True
        cookie = request.cookies.get(COOKIE, "")
        return hmac.compare_digest(cookie.encode(), self._sign("session").encode())

    def accepts(self, secret: str) -> bool:
        """Whether `secret`, typed into the login form, is the token or the password."""
        typed = secret.strip().encode()
        found = False
        for wanted in (self._token, self._password):
            # both compared, so the time taken says nothing of which one matched
            if wanted is not None and hmac.compare_digest(typed, wanted.encode()):
                found = True
        return found

    def session_cookie(self) -> str:
        return self._sign("session")

    # -- changes ---------------------------------------------------------------------

    def csrf_token(self, request: Request) -> str:
        """The token the page embeds in its forms (bound to the session, if any)."""
        return self._sign("csrf:" + request.cookies.get(COOKIE, ""))

    def same_origin(self, request: Request) -> bool:
        """Whether the browser says the request comes from this site (True when it says
        nothing: not a browser, and then the CSRF token or the bearer header decides)."""
        site = request.headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return False
        here = f"{request.url.scheme}://{request.headers.get('host', '')}".lower()
        origin = request.headers.get("origin")
        if origin is not None:
            return origin.lower() == here
        referer = request.headers.get("referer")
        if referer is not None:
            parts = urlsplit(referer)
            return f"{parts.scheme}://{parts.netloc}".lower() == here
        return True

    def change_allowed(self, request: Request, form: dict[str, str]) -> bool:
        """Whether a POST may change anything: from this site, and with the CSRF token
        (in the form or the X-CSRF-Token header) or the bearer header."""
        if not self.same_origin(request) or not self.logged_in(request):
            return False
        if self.bearer(request):
            return True
        given = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER, "")
        return hmac.compare_digest(given.encode(), self.csrf_token(request).encode())
