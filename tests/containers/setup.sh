#!/usr/bin/env bash
# Makes this machine able to build and run the image's containers with podman, idempotently:
#   bash tests/containers/setup.sh        (as root; tests/run.sh calls it)
#
# What it does, and why (a Debian 12 VM like the build machine: root without CAP_SYS_RESOURCE,
# hybrid cgroups, no container registry reachable, only the Debian mirror and PyPI):
#   1. apt-get installs podman, buildah, runc, netavark, aardvark-dns (service names in
#      compose networks), mmdebstrap.
#   2. A containers.conf drop-in: runc, because crun 1.8 refuses cgroup v1 with a cgroup2
#      controller beside it ("cgroups in hybrid mode not supported"); and default ulimits no
#      higher than this shell's hard limits, because podman asks for nofile=1048576 and the
#      runtime may only lower a limit without CAP_SYS_RESOURCE ("setrlimit: Operation not
#      permitted").
#   3. Base images, since none can be pulled: debian:bookworm-slim made by mmdebstrap from the
#      host's own apt sources (minbase, with the official slim image's dpkg excludes), and a
#      python:3.11-slim stand-in on it (Debian's Python 3.11 as a venv at /usr/local, laid out
#      like the official image), each tagged under docker.io/library/ too so that `FROM
#      python:3.11-slim` resolves here. The host's extra CA certificates (a proxy's) go into
#      the debian image so pip inside a build trusts what the host trusts.
# Where a real registry is reachable, none of 3 is needed; it is skipped when the images exist.
# Fails loudly (non-zero, a message naming the step) when any step cannot be done.
set -euo pipefail

work=${TMPDIR:-/tmp}/distribution-containers
dropin=/etc/containers/containers.conf.d/50-distribution-tests.conf

fail() { echo "tests/containers/setup.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "needs root (the container tests run rootful podman): sudo bash $0"

packages=(podman buildah runc netavark aardvark-dns mmdebstrap ca-certificates)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "tests/containers/setup.sh: installing ${missing[*]}" >&2
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null || fail "apt-get install ${missing[*]} failed"
fi

nofile=$(ulimit -Hn); { [ "$nofile" = unlimited ] || [ "$nofile" -gt 1048576 ]; } && nofile=1048576
nproc=$(ulimit -Hu); { [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; } && nproc=32768
config="# Written by tests/containers/setup.sh: runc (crun 1.8 refuses hybrid cgroups) and
# ulimits within this machine's hard limits (no CAP_SYS_RESOURCE to raise them).
[containers]
default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=$nproc:$nproc\"]

[engine]
runtime = \"runc\"
"
if [ "$(cat "$dropin" 2>/dev/null)" != "$config" ]; then
  mkdir -p "$(dirname "$dropin")"
  printf '%s' "$config" > "$dropin"
fi

tag_as() { # tag_as IMAGE NAME... : also known by these names
  local image=$1; shift
  for name in "$@"; do podman tag "$image" "$name"; done
}

if ! podman image exists docker.io/library/debian:bookworm-slim; then
  sources=/etc/apt/sources.list.d/debian.sources
  [ -s "$sources" ] || sources=/etc/apt/sources.list
  [ -s "$sources" ] || fail "no apt sources on this machine to build debian:bookworm-slim from"
  mkdir -p "$work"
  ca_hook=true
  if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    ca_hook='mkdir -p "$1/usr/local/share/ca-certificates" && cp /usr/local/share/ca-certificates/*.crt "$1/usr/local/share/ca-certificates/"'
  fi
  # As the official image: no .deb files or package caches left behind by apt-get install.
  clean='rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true'
  export apt_clean="DPkg::Post-Invoke { \"$clean\"; };
APT::Update::Post-Invoke { \"$clean\"; };
Dir::Cache::pkgcache \"\";
Dir::Cache::srcpkgcache \"\";"
  echo "tests/containers/setup.sh: making debian:bookworm-slim with mmdebstrap" >&2
  mmdebstrap --variant=minbase --mode=root --format=tar \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --aptopt='Acquire::Check-Valid-Until "false"' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook="$ca_hook" \
    --customize-hook='printf "%s\n" "$apt_clean" > "$1/etc/apt/apt.conf.d/docker-clean"' \
    --customize-hook='echo "Acquire::Languages \"none\";" > "$1/etc/apt/apt.conf.d/docker-no-languages"' \
    --customize-hook='rm -f "$1/etc/resolv.conf" "$1/etc/hostname" "$1"/var/cache/apt/*.bin' \
    bookworm "$work/bookworm.tar" "$sources" >"$work/mmdebstrap.log" 2>&1 \
    || { cat "$work/mmdebstrap.log" >&2; fail "mmdebstrap failed"; }
  podman import --quiet \
    --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$work/bookworm.tar" localhost/debian:bookworm-slim >/dev/null || fail "podman import failed"
  rm -f "$work/bookworm.tar"
  tag_as localhost/debian:bookworm-slim docker.io/library/debian:bookworm-slim
fi

if ! podman image exists docker.io/library/python:3.11-slim; then
  mkdir -p "$work/python"
  cat > "$work/python/Containerfile" <<'EOF'
# Stand-in for python:3.11-slim: Debian's Python 3.11 as a venv at /usr/local, so python, pip
# and site-packages are where the official image has them.
FROM debian:bookworm-slim
ENV LANG=C.UTF-8 PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates netbase tzdata python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /usr/local \
    && rm -f /usr/local/bin/activate* /usr/local/bin/Activate.ps1
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
CMD ["python3"]
EOF
  echo "tests/containers/setup.sh: making the python:3.11-slim stand-in" >&2
  podman build --quiet -t localhost/python:3.11-slim "$work/python" >/dev/null \
    || fail "building python:3.11-slim failed"
  tag_as localhost/python:3.11-slim docker.io/library/python:3.11-slim
fi

podman run --rm --network none docker.io/library/python:3.11-slim python3 -c 'pass' \
  || fail "podman cannot run a container here"
