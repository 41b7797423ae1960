#!/usr/bin/env bash
# Installs everything the test suite needs (idempotently) and runs it: bash tests/run.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests start as real components (systemd: systemd-analyze checks the unit;
# pebble: Let's Encrypt's ACME test server and its DNS server, pebble-challtestsrv;
# apache2-utils: Apache's htpasswd, which ours is checked against;
# chromium and chromium-driver: the web UI's browser tests).
python="${PYTHON:-python3}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
packages=(openssl skopeo podman docker-registry nginx redis-server systemd pebble apache2-utils
  chromium chromium-driver)
"$python" -c "import ensurepip" 2>/dev/null || packages+=(python3-venv)
command -v npm >/dev/null || packages+=(nodejs npm)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "tests/run.sh: installing ${missing[*]}" >&2
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    "${missing[@]}" >/dev/null
fi

# Ceph's RADOS Gateway on a one-OSD cluster: the second S3 implementation the s3 driver is tested on.
if ! command -v radosgw >/dev/null || ! command -v ceph-osd >/dev/null; then
  echo "tests/run.sh: installing radosgw ceph-mon ceph-osd" >&2
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends radosgw ceph-mon ceph-osd >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test,gcs,azure,s3]'
# The Azure Storage emulator the cloud driver tests start.
command -v azurite >/dev/null || $sudo npm install -g --silent --no-fund --no-audit azurite@3
# podman able to build and run the image here, and the base images it needs (tests/containers).
$sudo bash tests/containers/setup.sh
# Three processes on two cores: most tests wait on servers they started, not on the CPU. A
# file's tests stay in one process (its fixtures are started once); -n 0 runs in this one.
exec .venv/bin/python -m pytest -n "${PYTEST_WORKERS:-3}" --dist loadfile "$@"
