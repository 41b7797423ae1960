# The registry as registry:2 runs it: docker build -t registry-py . && docker run -d -p 5000:5000 registry-py
#
# Two stages: wheels are built and installed in the first, the dependencies into /install and the
# registry into /registry; the final stage is the Python base plus those trees and three small
# scripts (no compiler, pip cache or tests).
# Build arguments: EXTRAS, the optional storage drivers to include ("gcs,azure,s3" by default, as
# registry:2 carries every driver; "" for a smaller image with filesystem and inmemory only),
# VERSION and REVISION for the labels.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ARG EXTRAS=gcs,azure,s3
# dumb-init: a PID 1 that hands signals to the registry and reaps orphans (a static binary).
ARG DUMB_INIT=dumb-init==1.2.5.post1
WORKDIR /src
# Dependencies first, from the package metadata alone (a placeholder package gives the
# version), so that a change to the code rebuilds only the last step, with no download.
COPY setup.py setup.cfg README.md LICENSE ./
RUN pip install --no-cache-dir "setuptools>=64" wheel \
    && mkdir distribution && echo '__version__ = "0"' > distribution/__init__.py \
    && pip wheel --no-cache-dir --wheel-dir /wheels ".${EXTRAS:+[$EXTRAS]}" "$DUMB_INIT" \
    && rm -rf distribution build ./*.egg-info /wheels/distribution_py-* \
    && pip install --no-cache-dir --no-index --prefix /install --no-warn-script-location /wheels/*
COPY distribution ./distribution
RUN pip install --no-cache-dir --no-index --no-deps --no-build-isolation --prefix /registry .

FROM ${PYTHON_IMAGE}
COPY --from=build /install /usr/local
# `registry serve` runs its interpreter with -OO when the bytecode for that is on disk
# (distribution/entry.py), and the registry user cannot write it: it is compiled here for
# what is on the interpreter's path, but for installers and tools the server never imports.
RUN python -m compileall -q -j 0 -o 2 \
        -x '/(pip|setuptools|ensurepip|idlelib|lib2to3|pydoc_data|tkinter|turtledemo)/' \
        $(python -c 'import sys; print(*filter(None, sys.path))')
# The image's own volume belongs to `registry`, whom the registry then runs as
# (distribution/container/identity.py); a root-owned bind mount is served as in registry:2.
RUN groupadd --gid 1000 registry \
    && useradd --uid 1000 --gid 1000 --no-create-home --home-dir /var/lib/registry \
        --shell /usr/sbin/nologin registry \
    && mkdir -p /var/lib/registry /etc/docker/registry \
    && chown registry:registry /var/lib/registry
COPY etc/config.yml /etc/docker/registry/config.yml
COPY contrib/docker/entrypoint.sh /entrypoint.sh
COPY contrib/docker/htpasswd /usr/local/bin/htpasswd
# The registry's own code last: an image built for a change to it differs from the one before
# only from here on, the code and its bytecode, a few MiB a host pulls instead of the whole tree.
# compileall passes over what is compiled already.
COPY --from=build /registry /usr/local
RUN python -m compileall -q -j 0 -o 2 \
        -x '/(pip|setuptools|ensurepip|idlelib|lib2to3|pydoc_data|tkinter|turtledemo)/' \
        $(python -c 'import sys; print(*filter(None, sys.path))')
ARG PYTHON_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="distribution-py" \
      org.opencontainers.image.description="A container image registry in Python, drop-in for registry:2 (Docker Registry HTTP API v2, OCI Distribution v1.1)" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"

VOLUME ["/var/lib/registry"]
EXPOSE 5000
# GET / on the address and scheme the running registry's configuration names.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-m", "distribution.container.healthcheck"]

ENTRYPOINT ["/entrypoint.sh"]
CMD ["/etc/docker/registry/config.yml"]
