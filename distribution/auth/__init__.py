"""Access control: who may do what to which repository, as the ``auth:`` config selects it.

One access controller per application (``htpasswd``, ``token``, ``silly``, or none), built by
:mod:`distribution.auth.factory` and kept in ``app.extensions[EXTENSION]``. The API maps each
request to the :class:`Access` items it needs (``distribution.api.access``) and asks the
controller; the controller answers with a :class:`Grant` or raises :class:`Unauthenticated`
(401 and a challenge) or :class:`Forbidden` (403).
"""

from distribution.auth.base import (
    EXTENSION,
    Access,
    AccessController,
    Forbidden,
    Grant,
    Unauthenticated,
    scope,
)

__all__ = [
    "EXTENSION",
    "Access",
    "AccessController",
    "Forbidden",
    "Grant",
    "Unauthenticated",
    "scope",
]
