#!/usr/bin/env bash
# Installs everything the test suite needs (idempotently) and runs it: bash tests/run.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests start as real components (systemd: systemd-analyze checks the unit;
# chromium and chromium-driver: the web UI's browser tests).
python="${PYTHON:-python3}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
packages=(openssl skopeo podman docker-registry nginx redis-server systemd chromium chromium-driver)
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

if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test,gcs,azure]'
# The Azure Storage emulator the cloud driver tests start.
command -v azurite >/dev/null || $sudo npm install -g --silent --no-fund --no-audit azurite@3
exec .venv/bin/python -m pytest "$@"
