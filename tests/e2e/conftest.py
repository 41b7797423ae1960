"""Fixtures for the end-to-end tests: registries in real processes, skopeo, test images."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.checks import ImageSet
from tests.e2e.harness import KINDS, Server, Skopeo, StartServer


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """``start_server(kind, root=None, storage=None)``: a registry on ``root`` (default: the
    test's own), or on the driver entry ``storage`` (see :func:`harness.config_text`).

    Every server is stopped at teardown; its log is printed, so a failing test shows it, and a
    traceback in our registry's log fails the test (a 500 or a crash a client may not notice).
    """
    started: list[Server] = []

    def start(kind: str, root: Path | None = None, storage: str | None = None) -> Server:
        workdir = tmp_path / f"{kind}-{len(started)}"
        server = Server(kind, root or tmp_path / "root", workdir, storage)
        started.append(server)
        return server

    yield start
    gc.collect()  # closes the connections of dropped responses, which gunicorn lingers on
    for server in started:
        server.terminate()
    problems = []
    for server in started:
        try:
            server.wait_stopped()
        except AssertionError as err:
            problems.append(str(err))
    for server in started:
        print(f"----- {server} log -----\n{server.log}")
        if server.kind == "python" and "Traceback" in server.log:
            problems.append(f"traceback in the log of {server}")
    assert not problems, problems


@pytest.fixture(params=KINDS)
def registry(request: pytest.FixtureRequest, start_server: StartServer) -> Server:
    """The registry under test: the Go reference and ours, each on an empty root."""
    return start_server(request.param)


@pytest.fixture
def skopeo(tmp_path: Path) -> Skopeo:
    return Skopeo(tmp_path / "skopeo-home")


@pytest.fixture(scope="session")
def image_set(tmp_path_factory: pytest.TempPathFactory) -> ImageSet:
    """The test images, built once, in layouts skopeo reads."""
    return ImageSet.build(tmp_path_factory.mktemp("images"))
