# docker build -t registry-py . && docker run -d -p 5000:5000 registry-py
FROM python:3.11-slim

WORKDIR /src
COPY setup.py setup.cfg README.md LICENSE ./
COPY etc ./etc
COPY distribution ./distribution
RUN pip install --no-cache-dir '.[s3]' \
    && rm -rf /src \
    && useradd --system --uid 1000 --home-dir /var/lib/registry registry \
    && mkdir -p /var/lib/registry /etc/docker/registry \
    && chown registry:registry /var/lib/registry

COPY etc/config.yml /etc/docker/registry/config.yml
COPY contrib/docker/entrypoint.sh /entrypoint.sh

USER registry
WORKDIR /var/lib/registry
VOLUME ["/var/lib/registry"]
EXPOSE 5000

# The Go image's entry point and command: `docker run IMAGE /other/config.yml` or
# `docker run IMAGE garbage-collect ...` work as with registry:2.
ENTRYPOINT ["/entrypoint.sh"]
CMD ["/etc/docker/registry/config.yml"]
