"""The inmemory driver: the shared suite, minus what needs storage outside the process."""

from distribution.storage.driver import create
from tests.storage.driver_suite import DriverSuite


class TestInMemoryDriver(DriverSuite):
    driver_name = "inmemory"
    shared_across_processes = False
    streams_to_storage = False


def test_drivers_do_not_share_state() -> None:
    first, second = create("inmemory"), create("inmemory")
    first.put_content("/a", b"x")
    assert second.list("/") == []


def test_no_redirects() -> None:
    driver = create("inmemory")
    driver.put_content("/blob", b"x")
    assert driver.redirect_url("/blob", "GET") is None
