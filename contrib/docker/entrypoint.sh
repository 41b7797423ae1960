#!/bin/sh
# The Go registry image's entry point, and whom the registry runs as.
#
# As in registry:2, a config path or a registry subcommand runs the registry
# (`docker run IMAGE /path/config.yml`, `docker run IMAGE garbage-collect CONFIG`), `htpasswd`
# runs the htpasswd command, and anything else (a shell, say) runs as given.
#
# Started as root (the default, as registry:2), the registry itself runs as the owner of its
# storage root with no capabilities (distribution/container/identity.py says why and how it is
# chosen); started with --user, it runs as that user. dumb-init is PID 1: it hands SIGTERM to
# the registry, which lets requests in flight finish, and reaps every orphaned process.
set -e

case "$1" in
    *.yaml|*.yml) set -- registry serve "$@" ;;
    serve|garbage-collect|help|-*) set -- registry "$@" ;;
esac

if [ "$1" != registry ]; then
    exec "$@"
fi
if [ "$(id -u)" != 0 ]; then
    exec dumb-init --single-child -- "$@"
fi

identity=$(python -m distribution.container.identity --user registry -- "$@")
read -r uid gid caps <<EOF_IDENTITY
$identity
EOF_IDENTITY
exec setpriv --reuid="$uid" --regid="$gid" --clear-groups \
    --inh-caps="-all$caps" --ambient-caps="-all$caps" --bounding-set="-all$caps" \
    --no-new-privs -- dumb-init --single-child -- "$@"
