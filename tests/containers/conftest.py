"""Fixtures for the container tests: podman able to run containers, the image built once per
run, containers removed after each test (their logs printed, so a failure shows them)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.containers.harness import (
    REPO,
    Client,
    Container,
    build_image,
    ensure_podman,
    podman,
    tiny_image,
    unique,
)
from tests.e2e.checks import ImageSet
from tests.e2e.harness import Skopeo

#: One image per checkout, rebuilt (from podman's layer cache when nothing changed) each run.
IMAGE = "localhost/distribution-py-test:" + hashlib.sha256(str(REPO).encode()).hexdigest()[:12]

StartContainer = Callable[..., Container]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "containers: builds the image and runs it with podman (deselect with -m 'not containers')",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.containers)


@pytest.fixture(scope="session")
def image() -> str:
    """The image of this checkout, built by ``podman build`` once per test run."""
    ensure_podman()
    started = time.monotonic()
    build_image(IMAGE)
    print(f"built {IMAGE} in {time.monotonic() - started:.1f} s")
    return IMAGE


@pytest.fixture(scope="session")
def pushable(image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A tiny local image for ``podman push``, as the guide's ``ubuntu``."""
    name = f"localhost/{unique('tiny')}:latest"
    yield tiny_image(tmp_path_factory.mktemp("tiny"), name)
    # By its id: the tags `podman pull` gave it (127.0.0.1:PORT/...) go with it.
    image_id = podman("image", "inspect", "--format", "{{.Id}}", name).stdout.strip()
    podman("rmi", "-f", image_id, check=False)


@pytest.fixture
def start(image: str) -> Iterator[StartContainer]:
    """``start(*args, options=[...], url=...)``: ``podman run -d`` of the image."""
    started: list[Container] = []

    def run(*args: str, options: list[str] | tuple[str, ...] = (), url: str = "") -> Container:
        container = Container.run(image, *args, options=options, url=url)
        started.append(container)
        return container

    yield run
    for container in started:
        print(f"----- {container.name} -----\n{container.logs()}")
        container.remove()


@pytest.fixture
def client(tmp_path: Path) -> Client:
    return Client(tmp_path / "client")


@pytest.fixture
def skopeo(tmp_path: Path) -> Skopeo:
    return Skopeo(tmp_path / "skopeo-home")


@pytest.fixture(scope="session")
def image_set(tmp_path_factory: pytest.TempPathFactory) -> ImageSet:
    """The end-to-end tests' images, in layouts skopeo reads."""
    return ImageSet.build(tmp_path_factory.mktemp("images"))
