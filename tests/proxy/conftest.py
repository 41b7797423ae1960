"""Fixtures for the pull-through cache: a real upstream (the Go registry) holding the test
images, our registry in proxy mode in a real process, and skopeo."""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port
from tests.e2e import images
from tests.e2e.harness import GO_REGISTRY, REQUEST_TIMEOUT, Skopeo
from tests.process import ServerProcess

#: What the upstream holds: repository and tag of each test image.
IMAGE_REF = "library/app:1.0"
INDEX_REF = "library/multi:latest"


class GoRegistry(ServerProcess):
    """The Debian Go registry, its access log (every request it served) in ``server.log``."""

    def __init__(self, workdir: Path, extra_config: str = "", root: Path | None = None) -> None:
        self.port = free_port()
        self.netloc = f"127.0.0.1:{self.port}"
        self.root = root or workdir / "data"
        self.workdir = workdir
        config = workdir / "config.yml"
        workdir.mkdir(parents=True, exist_ok=True)
        config.write_text(
            f"""\
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: {self.root}
  delete:
    enabled: true
http:
  addr: {self.netloc}
  secret: proxy-tests
{extra_config}"""
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        super().__init__(
            [GO_REGISTRY, "serve", str(config)],
            workdir,
            env,
            f"http://{self.netloc}",
            merge_output=True,
        )
        self.wait_ready()

    def requests_seen(self, method: str, pattern: str) -> int:
        """How many ``method`` requests to paths matching ``pattern`` the access log shows."""
        regex = re.compile(rf'"{method} ({pattern})[? ]')
        return sum(1 for line in self.log.splitlines() if regex.search(line))


@pytest.fixture
def skopeo(tmp_path: Path) -> Skopeo:
    return Skopeo(tmp_path / "skopeo-home")


@pytest.fixture(scope="session")
def test_images(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[images.Image, images.Image, Path]:
    """A multi-layer OCI image and a two-platform index, in an OCI layout skopeo reads."""
    layout = tmp_path_factory.mktemp("proxy-images") / "oci"
    image = images.multi_layer_image(seed=71)
    index = images.multi_arch_index(seed=72)
    images.write_oci_layout(layout, {"image": image, "index": index})
    return image, index, layout


@pytest.fixture
def upstream(
    tmp_path: Path, skopeo: Skopeo, test_images: tuple[images.Image, images.Image, Path]
) -> Iterator[GoRegistry]:
    """The Go registry holding :data:`IMAGE_REF` and :data:`INDEX_REF`."""
    registry = GoRegistry(tmp_path / "upstream")
    _, _, layout = test_images
    skopeo.copy(f"oci:{layout}:image", f"docker://{registry.netloc}/{IMAGE_REF}")
    skopeo.copy(f"oci:{layout}:index", f"docker://{registry.netloc}/{INDEX_REF}", "--all")
    yield registry
    registry.stop()


def proxy_config(root: Path, remoteurl: str, extra: str = "") -> str:
    return f"""\
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: {root}
http:
  secret: proxy-tests
proxy:
  remoteurl: {remoteurl}
{extra}"""


@pytest.fixture
def start_proxy(start_registry: Callable, tmp_path: Path) -> Iterator[Callable]:
    """``start_proxy(remoteurl, extra="", env=None)``: our registry in proxy mode; its storage
    root is ``<tmp>/proxy-data``. A traceback in its log fails the test."""
    started = []

    def start(remoteurl: str, extra: str = "", env: dict[str, str] | None = None):
        registry = start_registry(proxy_config(tmp_path / "proxy-data", remoteurl, extra), env)
        registry.netloc = registry.url.removeprefix("http://")
        started.append(registry)
        return registry

    yield start
    gc.collect()
    for registry in started:
        registry.stop()
        print(f"----- {registry} log -----\n{registry.log}")
        assert "Traceback" not in registry.log


def get(url: str, **headers: str) -> requests.Response:
    return requests.get(url, headers=headers, timeout=REQUEST_TIMEOUT)
