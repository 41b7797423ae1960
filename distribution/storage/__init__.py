"""Registry storage: drivers, the on-disk layout, blobs, repositories and uploads."""
