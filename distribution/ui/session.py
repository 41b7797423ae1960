"""Who is signed in to the web UI, and the CSRF token of every form it serves.

The session is a cookie, signed (itsdangerous, HMAC-SHA1 with a key derived from
``http.secret`` and a salt of its own), so that every worker of every replica sharing the
secret accepts it and no server keeps state. It holds the user's name, a random nonce, a
digest of the user's htpasswd entry and the time of the sign-in: it ends ``ui.sessiontimeout``
after the sign-in, or at once when that entry changes (a new password, a removed user), or
when ``http.secret`` changes. The cookie is re-issued with each notice it carries, with the
sign-in's time unchanged, so that no activity (nor a stolen copy kept busy) makes it last
longer; its ``Max-Age`` is the time left.

The cookie is ``HttpOnly``, ``SameSite=Strict``, ``Secure`` when the client came over TLS
(directly or through a proxy's ``X-Forwarded-Proto``) and scoped to the UI's path. Signing out
replaces it in the browser; a copy taken before stays valid until it expires, as with any
stateless session.

A form's CSRF token is an HMAC of the session's nonce: a page from another site can neither
read it nor send the cookie (``SameSite=Strict``). Visitors who are not signed in get a
session without a user when they first need a form (the sign-in form), so a sign-in cannot be
forged either; a successful sign-in starts a new nonce.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, replace

from itsdangerous import BadSignature, URLSafeSerializer

#: The cookie's name.
COOKIE = "registry_ui"
_SALT = "distribution.ui.session"
_CSRF_SALT = b"distribution.ui.csrf"
#: Notices a session keeps for the next page (an action adds at most two).
MAX_NOTICES = 4


@dataclass(frozen=True)
class Session:
    """One browser's session; ``user`` is None until it signs in."""

    nonce: str
    user: str | None = None
    #: The digest of the user's entry it was made from (see :meth:`Sessions.load`).
    entry: str = ""
    #: Messages for the next page shown (a delete's result), shown once.
    notices: tuple[str, ...] = ()
    #: When it began (the sign-in; for a visitor, the first form), in Unix seconds: it ends
    #: ``ui.sessiontimeout`` later, however often the cookie is re-issued.
    started: float = 0.0

    @classmethod
    def new(cls, user: str | None = None, entry: str = "") -> Session:
        return cls(secrets.token_urlsafe(18), user, entry, started=time.time())

    def with_notices(self, *notices: str) -> Session:
        """The session with ``notices`` added after those not shown yet, of which only the
        last few are kept: a client that posts forms without following the redirect that shows
        them would otherwise grow its cookie past what browsers and proxies take."""
        return replace(self, notices=(self.notices + notices)[-MAX_NOTICES:])

    def without_notices(self) -> Session:
        return replace(self, notices=())


class Sessions:
    """Reads and writes session cookies for one secret and lifetime."""

    def __init__(self, secret: str, timeout: float) -> None:
        self.timeout = timeout
        self._serializer = URLSafeSerializer(secret, salt=_SALT)
        self._csrf_key = hmac.new(secret.encode(), _CSRF_SALT, hashlib.sha256).digest()

    def load(self, cookie: str | None) -> Session | None:
        """The session a cookie holds; None if missing, forged, expired or malformed."""
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie)
        except BadSignature:
            return None
        if not isinstance(data, dict):
            return None
        nonce, user, entry = data.get("n"), data.get("u"), data.get("e", "")
        notices, started = data.get("m", []), data.get("t")
        if not isinstance(nonce, str) or not nonce or not isinstance(entry, str):
            return None
        if not isinstance(started, int | float) or isinstance(started, bool):
            return None
        if time.time() - started > self.timeout:
            return None
        if user is not None and not isinstance(user, str):
            return None
        if not isinstance(notices, list) or not all(isinstance(n, str) for n in notices):
            notices = []
        return Session(nonce, user, entry, tuple(notices), started)

    def dump(self, session: Session) -> str:
        data: dict[str, object] = {"n": session.nonce, "t": session.started}
        if session.user is not None:
            data["u"], data["e"] = session.user, session.entry
        if session.notices:
            data["m"] = list(session.notices)
        return self._serializer.dumps(data)

    def left(self, session: Session) -> int:
        """Whole seconds until ``session`` ends: its cookie's ``Max-Age``."""
        return max(0, round(self.timeout - (time.time() - session.started)))

    def csrf_token(self, session: Session) -> str:
        return hmac.new(self._csrf_key, session.nonce.encode(), hashlib.sha256).hexdigest()

    def csrf_valid(self, session: Session | None, token: str | None) -> bool:
        if session is None or not token:
            return False
        return hmac.compare_digest(self.csrf_token(session), token)
