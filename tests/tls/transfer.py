"""An image copied in and out of a registry by skopeo with TLS verified, nothing disabled.

Shared by the TLS and proxy tests: the copy out must give back every byte that went in.
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e import images
from tests.e2e.harness import Skopeo


def small_image(seed: int) -> images.Image:
    """A small two-layer OCI image, one layer above 1 MiB so it is pushed in several pieces."""
    layers = [
        images.random_layer(200 * images.KiB, seed),
        images.random_layer(1200 * images.KiB, seed + 1),
    ]
    return images.image(layers)


def round_trip(
    skopeo: Skopeo,
    work: Path,
    ref: str,
    img: images.Image,
    *dest_flags: str,
    src_flags: tuple[str, ...] = (),
) -> None:
    """Push ``img`` to ``docker://ref`` and pull it back; assert that nothing changed.

    ``dest_flags`` go with the push (``--dest-cert-dir``, ``--dest-creds``), ``src_flags`` with
    the pull.
    """
    layout_in, layout_out = work / "in", work / "out"
    images.write_oci_layout(layout_in, {"t": img})
    skopeo.run("copy", "--preserve-digests", *dest_flags, f"oci:{layout_in}:t", f"docker://{ref}")
    skopeo.run("copy", "--preserve-digests", *src_flags, f"docker://{ref}", f"oci:{layout_out}:t")
    tags, blobs = images.read_oci_layout(layout_out)
    assert tags == {"t": img.digest}
    assert blobs == img.all_manifests() | img.all_blobs()


def cert_dir(directory: Path, ca: Path, client: tuple[Path, Path] | None = None) -> Path:
    """A containers-certs.d directory: ``ca.crt``, and ``client.cert``/``client.key``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.crt").write_bytes(ca.read_bytes())
    if client:
        (directory / "client.cert").write_bytes(client[0].read_bytes())
        (directory / "client.key").write_bytes(client[1].read_bytes())
    return directory
