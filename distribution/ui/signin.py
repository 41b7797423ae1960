"""Signing in to the web UI with the registry's own users, whatever ``auth:`` configures.

* no auth: there is nothing to sign in to; everybody may do everything;
* ``htpasswd``: the user's name and password, checked as the API checks Basic credentials
  (the same file, re-read when it changes; the same constant-time refusal);
* ``silly`` (development only): any name and password sign in as ``silly``, as any
  ``Authorization`` header does on the API;
* ``token``: not supported. Who may do what is in the claims of tokens that the token server
  issues per repository and action; the UI would have to ask it for a token for every
  repository it lists, with the user's password kept between requests. The UI says so.
"""

from __future__ import annotations

from distribution.auth import AccessController
from distribution.auth.htpasswd import HtpasswdController
from distribution.auth.silly import USER as SILLY_USER
from distribution.auth.silly import SillyController

#: What the UI can do with the configured access controller.
OPEN = "open"
PASSWORD = "password"
ANYONE = "silly"
UNSUPPORTED = "unsupported"


class SignIn:
    """Checks credentials against the configured access controller."""

    def __init__(self, controller: AccessController | None) -> None:
        self._controller = controller
        if controller is None:
            self.mode = OPEN
        elif isinstance(controller, HtpasswdController):
            self.mode = PASSWORD
        elif isinstance(controller, SillyController):
            self.mode = ANYONE
        else:
            self.mode = UNSUPPORTED

    def check(self, user: str, password: str) -> str | None:
        """The name the user is signed in as, or None for wrong credentials."""
        if not user or len(user) > 256 or len(password) > 1024:
            return None
        if isinstance(self._controller, HtpasswdController):
            if self._controller.authenticate(user, password.encode()):
                return user
            return None
        if self.mode == ANYONE:
            return SILLY_USER
        return None

    def entry(self, user: str) -> str | None:
        """A digest of the user's entry now (None: gone); a session is valid while it holds."""
        if isinstance(self._controller, HtpasswdController):
            return self._controller.entry_version(user)
        if self.mode == ANYONE and user == SILLY_USER:
            return ""
        return None
