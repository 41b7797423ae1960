"""skopeo, the test images and a notifications endpoint for the quota tests."""

from tests.e2e.conftest import image_set, skopeo
from tests.notifications.conftest import receiver

__all__ = ["image_set", "receiver", "skopeo"]
