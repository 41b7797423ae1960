"""Whether this process is asked to stop, in a module of its own: the worker sets it, and the
maintenance jobs, which also run in processes that are no gunicorn worker, read it."""

from __future__ import annotations

import threading

#: Set once this worker process is asked to stop (SIGTERM, SIGINT, SIGQUIT): while its
#: requests drain, its background jobs stop and start nothing new (:mod:`.maintenance`).
STOPPING = threading.Event()
