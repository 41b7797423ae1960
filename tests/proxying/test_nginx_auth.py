"""htpasswd authentication through nginx terminating TLS: what ``docker login`` users do.

skopeo logs in, copies with the stored credentials, logs out (after which it is refused), and
copies with ``--creds``; the 401 challenge comes back through nginx unchanged.
"""

from __future__ import annotations

from pathlib import Path

import bcrypt
import requests

from tests.e2e.harness import Skopeo
from tests.tls import transfer

TIMEOUT = 30
REALM = "Registry Realm"
USER, PASSWORD = "testuser", "testpassword"


def htpasswd(path: Path) -> Path:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(5)).decode()
    path.write_text(f"{USER}:{hashed.replace('$2b$', '$2y$', 1)}\n")
    return path


def auth_config(htpasswd_path: Path) -> str:
    return f"""\
version: 0.1
log:
  fields: {{service: registry}}
storage:
  filesystem: {{rootdirectory: {htpasswd_path.parent / "data"}}}
  delete: {{enabled: true}}
http:
  addr: :5000
  secret: behind-nginx
auth:
  htpasswd:
    realm: {REALM}
    path: {htpasswd_path}
"""


def test_login_logout_and_creds_through_nginx(start_proxy, tmp_path: Path) -> None:
    proxy = start_proxy(auth_config(htpasswd(tmp_path / "htpasswd")))
    certs = transfer.cert_dir(tmp_path / "certs", proxy.cert)
    cert_flag = f"--cert-dir={certs}"
    host = proxy.netloc()

    challenged = requests.get(f"{proxy.url()}/v2/", verify=str(proxy.cert), timeout=TIMEOUT)
    assert challenged.status_code == 401
    assert challenged.headers["WWW-Authenticate"] == f'Basic realm="{REALM}"'
    assert challenged.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert challenged.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert requests.get(f"{proxy.url()}/", verify=str(proxy.cert), timeout=TIMEOUT).ok

    skopeo = Skopeo(tmp_path / "skopeo")
    authfile = tmp_path / "auth.json"
    wrong = skopeo.run(
        "login", cert_flag, f"--authfile={authfile}", "-u", USER, "-p", "wrong", host, check=False
    )
    assert wrong.returncode != 0

    skopeo.run("login", cert_flag, f"--authfile={authfile}", "-u", USER, "-p", PASSWORD, host)
    assert host in authfile.read_text()
    transfer.round_trip(
        skopeo,
        tmp_path / "logged-in",
        f"{host}/auth/login:v1",
        transfer.small_image(seed=41),
        f"--dest-cert-dir={certs}",
        f"--dest-authfile={authfile}",
        src_flags=(f"--src-cert-dir={certs}", f"--src-authfile={authfile}"),
    )

    skopeo.run("logout", f"--authfile={authfile}", host)
    refused = skopeo.run(
        "inspect",
        cert_flag,
        f"--authfile={authfile}",
        f"docker://{host}/auth/login:v1",
        check=False,
    )
    assert refused.returncode != 0
    assert b"unauthorized" in refused.stderr.lower() or b"401" in refused.stderr

    creds = f"{USER}:{PASSWORD}"
    transfer.round_trip(
        skopeo,
        tmp_path / "creds",
        f"{host}/auth/creds:v1",
        transfer.small_image(seed=51),
        f"--dest-cert-dir={certs}",
        f"--dest-creds={creds}",
        src_flags=(f"--src-cert-dir={certs}", f"--src-creds={creds}"),
    )
    assert "Traceback" not in proxy.registry.log
    assert PASSWORD not in proxy.registry.log
