"""What the drivers do about a troubled back-end and bad settings, before and after start-up.

GCS chunk PUTs and S3 part uploads are retried through a proxy that fails them on purpose (S3
behind it is moto, which checks no signature: the proxy changes the ``Host`` a signature
covers); a missing bucket, a refused key or an unreachable endpoint stops ``registry serve``
in one line. There is no Azure AD here: for ``client_secret`` and
``default_credentials`` only the parameter checks (and a refusal without any network) are
tested, never a real token.
"""

from __future__ import annotations

import json
import os
import random
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from distribution.storage.driver import (
    InvalidParameterError,
    StorageDriver,
    StorageDriverError,
    create,
)
from tests.cloud.faulty_proxy import FaultyProxy
from tests.conftest import make_certificate
from tests.storage import azure_emulator as azure
from tests.storage import s3_emulator as s3
from tests.storage.azure_emulator import azure_emulator
from tests.storage.gcs_emulator import BUCKET, gcs_emulator

__all__ = ["azure_emulator", "gcs_emulator"]

CHUNK = 256 * 1024


@pytest.fixture
def proxy(gcs_emulator: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultyProxy]:
    """fake-gcs-server behind a faulty proxy, which the GCS libraries are pointed at."""
    faulty = FaultyProxy(gcs_emulator)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", faulty.url)
    yield faulty
    faulty.stop()


def _gcs(**parameters: Any) -> StorageDriver:
    settings = {"bucket": BUCKET, "rootdirectory": "/retries", "chunksize": CHUNK}
    return create("gcs", {**settings, "retry_delay": "10ms", **parameters})


def _session_put(method: str, path: str) -> bool:
    return method == "PUT" and "upload_id=" in path


def test_gcs_useragent_is_sent_on_every_request(proxy: FaultyProxy) -> None:
    """Go's ``useragent`` parameter: API calls and resumable chunk uploads alike."""
    driver = _gcs(useragent="registry-test/1.0")
    with driver.writer("/agent") as writer:
        writer.write(random.Random(9).randbytes(CHUNK + 10))
        writer.commit()
    driver.stat("/agent")
    driver.delete("/agent")
    assert len(proxy.user_agents) >= 4
    assert all("registry-test/1.0" in agent for agent in proxy.user_agents), proxy.user_agents


def test_gcs_chunk_puts_are_retried_on_throttling_errors_and_drops(proxy: FaultyProxy) -> None:
    driver = _gcs(max_retries=4)
    data = random.Random(3).randbytes(3 * CHUNK + 1000)
    proxy.fail(_session_put, [503, 429, None, 500])
    with driver.writer("/retried") as writer:
        writer.write(data)
        writer.commit()
    assert [fault for _, _, fault in proxy.injected] == [503, 429, None, 500]
    assert driver.get_content("/retried") == data
    driver.delete("/retried")


def test_gcs_chunks_persisted_in_part_are_sent_on_from_where_gcs_stopped(
    proxy: FaultyProxy,
) -> None:
    """A 308 whose ``Range`` is short of what was sent: the rest is sent again, not lost."""
    driver = _gcs(max_retries=0, chunksize=4 * CHUNK)
    data = random.Random(5).randbytes(13 * CHUNK + 1000)
    proxy.shorten(3)
    with driver.writer("/shortened") as writer:
        writer.write(data[: 5 * CHUNK])
    with driver.writer("/shortened", append=True) as writer:
        writer.write(data[5 * CHUNK :])
        writer.commit()
    assert len(proxy.shortened) == 3
    assert driver.get_content("/shortened") == data
    driver.delete("/shortened")


def test_gcs_retries_are_bounded(proxy: FaultyProxy) -> None:
    driver = _gcs(max_retries=2)
    proxy.fail(_session_put, [503] * 10)
    writer = driver.writer("/doomed")
    with pytest.raises(StorageDriverError):
        writer.write(b"x" * (2 * CHUNK))
    assert len(proxy.injected) == 3  # the first try and two retries
    proxy.fail(_session_put, [])
    writer.cancel()


def test_gcs_other_calls_are_retried_too(proxy: FaultyProxy) -> None:
    """The client library's calls get an api_core retry, bounded by the sum of the pauses."""
    driver = _gcs(max_retries=5)
    driver.put_content("/small", b"content")
    proxy.fail(lambda method, path: method == "GET" and "/o/" in path, [503, None])
    assert driver.get_content("/small") == b"content"
    assert len(proxy.injected) == 2
    driver.delete("/small")


@pytest.mark.parametrize(
    ("parameters", "parameter"),
    [
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": "many"}, "max_retries"),
        ({"retry_delay": "soon"}, "retry_delay"),
    ],
)
def test_gcs_bad_retry_parameters(
    gcs_emulator: str, parameters: dict[str, Any], parameter: str
) -> None:
    with pytest.raises(InvalidParameterError) as info:
        create("gcs", {"bucket": BUCKET, **parameters})
    assert info.value.parameter == parameter


def test_gcs_missing_bucket_fails_at_start(gcs_emulator: str) -> None:
    with pytest.raises(StorageDriverError, match="bucket 'nosuch' does not exist"):
        create("gcs", {"bucket": "nosuch"})


def test_serve_refuses_a_missing_bucket_in_one_line(gcs_emulator: str, tmp_path: Path) -> None:
    result = _serve(tmp_path, {"gcs": {"bucket": "nosuch"}})
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "registry: configuration error: storage.gcs: bucket 'nosuch' does not exist"
    )
    assert "Traceback" not in result.stderr


def test_azure_calls_are_retried_and_bounded(azure_emulator: str) -> None:
    """Appends are conditional on the position, so a retry never duplicates a block."""
    proxy = FaultyProxy(azure_emulator.rsplit("/", 1)[0])
    try:
        settings = _azure(
            f"{proxy.url}/{azure.ACCOUNT}",
            accountkey=azure.KEY,
            rootdirectory="/retries",
            max_retries=3,
            retry_delay="10ms",
        )
        driver = create("azure", settings)
        data = random.Random(4).randbytes(5 * 1024 * 1024)
        proxy.fail(_append_block, [503, None, 500])
        with driver.writer("/retried") as writer:
            writer.write(data)
            writer.commit()
        assert [fault for _, _, fault in proxy.injected] == [503, None, 500]
        assert driver.get_content("/retried") == data

        proxy.fail(_append_block, [503] * 10)
        writer = driver.writer("/doomed")
        with pytest.raises(StorageDriverError):
            writer.write(data)
        assert len(proxy.injected) == 3 + 4  # the first try and three retries
        proxy.fail(_append_block, [])
        writer.cancel()
        driver.delete("/retried")
    finally:
        proxy.stop()


def test_s3_calls_are_retried_and_bounded(moto_s3: str) -> None:
    proxy = FaultyProxy(moto_s3)
    try:
        settings = s3.parameters(proxy.url, rootdirectory="/retries", max_retries=3)
        driver = create("s3", settings)
        data = random.Random(6).randbytes(12 * 1024 * 1024)
        proxy.fail(_upload_part, [503, None, 500])
        with driver.writer("/retried") as writer:
            writer.write(data)
            writer.commit()
        assert [fault for _, _, fault in proxy.injected] == [503, None, 500]
        assert driver.get_content("/retried") == data

        proxy.fail(lambda method, path: method == "GET" and "/retried" in path, [503, None])
        assert driver.get_content("/retried") == data
        assert len(proxy.injected) == 3 + 2

        proxy.fail(_upload_part, [503] * 10)
        writer = driver.writer("/doomed")
        with pytest.raises(StorageDriverError):
            writer.write(data + data)  # a part goes out once 10 + 5 MiB are waiting
        assert len(proxy.injected) == 5 + 4  # the first try and three retries
        proxy.fail(_upload_part, [])
        writer.cancel()
        driver.delete("/retried")
    finally:
        proxy.stop()


@pytest.mark.parametrize(("max_retries", "tries"), [(0, 1 + 5), (-1, 1), (2, 1 + 2)])
def test_azure_max_retries_zero_is_gos_default_and_negative_is_none(
    azure_emulator: str, max_retries: int, tries: int
) -> None:
    proxy = FaultyProxy(azure_emulator.rsplit("/", 1)[0])
    try:
        settings = _azure(
            f"{proxy.url}/{azure.ACCOUNT}",
            accountkey=azure.KEY,
            max_retries=max_retries,
            retry_delay="1ms",
        )
        driver = create("azure", settings)
        proxy.fail(lambda method, path: method == "GET", [503] * 10)
        with pytest.raises(StorageDriverError):
            driver.get_content("/missing-anyway")
        assert len(proxy.injected) == tries
    finally:
        proxy.stop()


def _upload_part(method: str, path: str) -> bool:
    return method == "PUT" and "partNumber=" in path


def test_serve_refuses_a_missing_s3_bucket_in_one_line(moto_s3: str, tmp_path: Path) -> None:
    result = _serve(tmp_path, {"s3": s3.parameters(moto_s3, bucket="nosuch")})
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "registry: configuration error: storage.s3.bucket: bucket 'nosuch' does not exist"
    )
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("settings", "line"),
    [
        ({"secretkey": "wrong"}, "storage.s3.accesskey: credentials refused for bucket"),
        (
            {"regionendpoint": "http://127.0.0.1:1", "max_retries": 0},
            "storage.s3.regionendpoint: cannot reach http://127.0.0.1:1: ",
        ),
    ],
    ids=["wrong-key", "bad-endpoint"],
)
def test_serve_refuses_bad_s3_settings_in_one_line(
    ceph_s3: str, tmp_path: Path, settings: dict[str, Any], line: str
) -> None:
    """Ceph checks signatures (moto does not)."""
    result = _serve(tmp_path, {"s3": s3.parameters(ceph_s3, **settings)})
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith(f"registry: configuration error: {line}")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("skipverify", [True, False])
def test_azure_skipverify(azure_emulator: str, tmp_path: Path, skipverify: bool) -> None:
    """Go's ``skipverify``: a service whose certificate no CA vouches for is accepted."""
    cert, key = make_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    proxy = FaultyProxy(azure_emulator.rsplit("/", 1)[0], tls=context)
    try:
        settings = _azure(
            f"{proxy.url}/{azure.ACCOUNT}",
            accountkey=azure.KEY,
            skipverify=skipverify,
            max_retries=-1,
        )
        if skipverify:
            create("azure", settings).put_content("/verified", b"x")
        else:
            with pytest.raises(StorageDriverError) as info:
                create("azure", settings)
            assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
    finally:
        proxy.stop()


def _append_block(method: str, path: str) -> bool:
    return method == "PUT" and "comp=appendblock" in path


def _azure(serviceurl: str, **parameters: Any) -> dict[str, Any]:
    return {
        "accountname": azure.ACCOUNT,
        "container": azure.CONTAINER,
        "serviceurl": serviceurl,
        **parameters,
    }


CLIENT_SECRET = {"type": "client_secret", "clientid": "c", "tenantid": "t", "secret": "s"}


@pytest.mark.parametrize(
    ("credentials", "parameter"),
    [
        ({"type": "client_secret", "tenantid": "t", "secret": "s"}, "credentials.clientid"),
        ({"type": "client_secret", "clientid": "c", "secret": "s"}, "credentials.tenantid"),
        ({"type": "client_secret", "clientid": "c", "tenantid": "t"}, "credentials.secret"),
        ({**CLIENT_SECRET, "secret": 42}, "credentials.secret"),
        ({"type": "shared_key"}, "accountkey"),
        ({"type": "managed"}, "credentials.type"),
        ("client_secret", "credentials"),
    ],
)
def test_azure_bad_credentials_parameters(credentials: Any, parameter: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        create("azure", _azure("https://127.0.0.1:1/x", credentials=credentials))
    assert info.value.parameter == parameter


@pytest.mark.parametrize("credentials", [CLIENT_SECRET, {"type": "default_credentials"}, None])
def test_azure_ad_credentials_need_https(credentials: Any) -> None:
    """Azure AD tokens only go over TLS; without an account key, default_credentials apply."""
    with pytest.raises(InvalidParameterError) as info:
        create("azure", _azure("http://127.0.0.1:1/x", credentials=credentials))
    assert info.value.parameter == "serviceurl"


def test_azure_default_credentials_with_none_available_stop_serve_in_one_line(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_"))}
    settings = _azure(
        "https://127.0.0.1:1/x", credentials={"type": "default_credentials"}, max_retries=0
    )
    result = _serve(tmp_path, {"azure": settings}, env)
    assert result.returncode == 1
    last = result.stderr.splitlines()[-1]
    assert last.startswith("registry: configuration error: storage.azure: credentials refused")
    assert "Traceback" not in result.stderr


def _serve(
    tmp_path: Path, storage: dict[str, Any], env: dict[str, str] | None = None, **sections: Any
) -> subprocess.CompletedProcess[str]:
    """``registry serve`` on a config of ``storage`` and other top-level ``sections``."""
    config = tmp_path / "config.yml"
    config.write_text(json.dumps({"version": "0.1", "storage": storage, **sections}))
    env = {k: v for k, v in (env or os.environ).items() if not k.startswith("REGISTRY_")}
    return subprocess.run(
        [sys.executable, "-m", "distribution", "serve", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
