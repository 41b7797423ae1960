"""Whether this worker is asked to stop. The worker sets it and the maintenance scheduler reads
it; in a module of its own so that the scheduler, which a job's own process imports too, does
not load gunicorn with the worker."""

from __future__ import annotations

import threading

#: Set once this worker process is asked to stop (SIGTERM, SIGINT, SIGQUIT): while its
#: requests drain, its background jobs stop and start nothing new (:mod:`.maintenance`).
STOPPING = threading.Event()
