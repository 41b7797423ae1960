"""The referrers of a manifest (OCI distribution v1.1), derived from the stored manifests.

The Go registry keeps no referrers index, and a data volume it wrote must answer correctly
here, so nothing is indexed: every call reads each manifest linked into the repository and
keeps those whose ``subject`` is the digest asked about. The cost is one link read, one stat
and one blob read per manifest in the repository, on every call; fine for the repositories
signatures and SBOMs are attached to, linear in their size for very large ones.
"""

from __future__ import annotations

import logging
from typing import Any

from distribution import errors, manifest
from distribution.digest import Digest
from distribution.storage.manifests import ManifestStore

log = logging.getLogger(__name__)


def referrers(
    store: ManifestStore, subject: Digest, artifact_type: str | None = None
) -> list[dict[str, Any]]:
    """Descriptors of the manifests whose ``subject`` is ``subject``, sorted by digest.

    With ``artifact_type``, only referrers of that artifact type. A repository that does not
    exist simply has none.
    """
    found = []
    for digest in store.digests():
        try:
            body = store.get(digest)
            if manifest.classify(body) not in (manifest.OCI_MANIFEST, manifest.OCI_INDEX):
                continue
            parsed = manifest.parse_stored(body)
        except errors.ManifestUnknown:
            continue
        except errors.Unknown as exc:
            log.warning("skipping unreadable manifest %s in %s: %s", digest, store.name, exc)
            continue
        if parsed.subject is None or parsed.subject.digest != subject:
            continue
        if artifact_type is not None and parsed.referrer_artifact_type != artifact_type:
            continue
        found.append(manifest.referrer_descriptor(parsed, digest, len(body)))
    return found
