"""The end-to-end fixtures (registries in real processes, skopeo, test images) for GC tests."""

from tests.e2e.conftest import image_set, skopeo, start_server

__all__ = ["image_set", "skopeo", "start_server"]
