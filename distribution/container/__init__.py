"""What the container image runs around the registry: whom it runs as, and its health check.

Both are started by the image (``contrib/docker/entrypoint.sh`` and the ``HEALTHCHECK``), read
the configuration the registry itself reads, and do nothing outside a container.
"""
