"""Storage test configuration."""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: streams hundreds of MiB through a driver (deselect with -m 'not slow')"
    )
