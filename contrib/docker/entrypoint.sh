#!/bin/sh
# The Go registry image's entry point: a config path or a registry subcommand runs the registry;
# anything else (a shell, say) runs as given.
set -e

case "$1" in
    *.yaml|*.yml) set -- registry serve "$@" ;;
    serve|garbage-collect|help|-*) set -- registry "$@" ;;
esac

exec "$@"
