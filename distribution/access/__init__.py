"""Access rules per repository: who may pull, push and delete where, and which tags are frozen.

Our extension (the top-level ``access:`` section, which the Go registry ignores). The pieces:

* :mod:`~distribution.access.patterns`: the glob patterns (``*``, ``**``, ``?``, ``[...]``)
  over repository names and tags, also used by retention policies;
* :mod:`~distribution.access.policy`: the checked rules and the one decision,
  ``policy.decide(identity, repository, action) -> Decision(allowed, rule)``, that the API,
  the CLI and the UI all ask; plus ``policy.immutable(repository, tag)`` and
  ``policy.visibility(identity)`` for lists;
* :mod:`~distribution.access.source`: the policy of the config, or of the file at
  ``access.path``, re-read when it changes.

The application keeps its :class:`PolicySource` in ``app.extensions[EXTENSION]``; a request
asks ``source.current()`` for the policy to decide with. Nothing here does HTTP.
"""

from distribution.access.patterns import Pattern, PatternError
from distribution.access.policy import (
    ACTIONS,
    ANONYMOUS,
    Decision,
    Identity,
    Mode,
    Policy,
    Visibility,
    parse,
)
from distribution.access.source import PolicySource, check, read_file

#: The ``app.extensions`` key holding the application's :class:`PolicySource`.
EXTENSION = "access"

__all__ = [
    "ACTIONS",
    "ANONYMOUS",
    "EXTENSION",
    "Decision",
    "Identity",
    "Mode",
    "Pattern",
    "PatternError",
    "Policy",
    "PolicySource",
    "Visibility",
    "check",
    "parse",
    "read_file",
]
