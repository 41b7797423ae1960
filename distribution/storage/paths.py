"""Every storage path the registry uses, as pure functions: distribution's layout, byte for byte.

::

    /docker/registry/v2/
      blobs/<alg>/<hex[0:2]>/<hex>/data
      repositories/<name>/_layers/<alg>/<hex>/link
      repositories/<name>/_manifests/revisions/<alg>/<hex>/link
      repositories/<name>/_manifests/tags/<tag>/current/link
      repositories/<name>/_manifests/tags/<tag>/index/<alg>/<hex>/link
      repositories/<name>/_uploads/<uuid>/data
      repositories/<name>/_uploads/<uuid>/startedat
      repositories/<name>/_referrers/indexed        ours: the referrers index covers this repository
      repositories/<name>/_referrers/<alg>/<subject hex>/<alg>/<hex>   ours: a referrer's descriptor
      repositories/<name>/_emptied/at               ours: a deletion left it with nothing
      _maintenance/gc/trash/<alg>/<hex>/data       ours: blobs online GC is about to delete
      _maintenance/quarantine/<alg>/<hex>/data     ours: blobs ``registry verify`` found damaged
      _maintenance/leases/<job>                     ours: the maintenance lease without Redis
      _maintenance/proxy/scheduled/<id>             ours: pull-through content to schedule
      _maintenance/journal/<id>                     ours: a batch of pull times and changed names
      _maintenance/usage/{state,report,summary}.json ours: what usage, quotas and retention know
      _maintenance/catalog/emptied-noted            ours: every emptied repository is noted
    /scheduler-state.json                           the pull-through cache's expiry schedule

Callers pass names, tags and digests that were already validated (see ``reference.py`` and
``digest.py``); the driver wrapper rejects anything else anyway.
"""

from __future__ import annotations

from distribution.digest import Digest

ROOT = "/docker/registry/v2"
BLOBS = f"{ROOT}/blobs"
REPOSITORIES = f"{ROOT}/repositories"


def blob_dir(digest: Digest) -> str:
    return f"{BLOBS}/{digest.algorithm}/{digest.hex[:2]}/{digest.hex}"


def blob_data(digest: Digest) -> str:
    return f"{blob_dir(digest)}/data"


#: The entries of a repository's folder that the catalog looks for: Go's mark of a repository,
#: and our note of one emptied.
MANIFESTS_ENTRY = "_manifests"
EMPTIED_ENTRY = "_emptied"


def repository(name: str) -> str:
    return f"{REPOSITORIES}/{name}"


def layers(name: str) -> str:
    return f"{repository(name)}/_layers"


def layer_link(name: str, digest: Digest) -> str:
    return f"{layers(name)}/{digest.algorithm}/{digest.hex}/link"


def manifests(name: str) -> str:
    return f"{repository(name)}/{MANIFESTS_ENTRY}"


def manifest_revisions(name: str) -> str:
    return f"{manifests(name)}/revisions"


def manifest_revisions_of(name: str, algorithm: str) -> str:
    """The folder of one algorithm's revisions: a new manifest adds an entry here."""
    return f"{manifest_revisions(name)}/{algorithm}"


def manifest_revision(name: str, digest: Digest) -> str:
    return f"{manifest_revisions(name)}/{digest.algorithm}/{digest.hex}"


def manifest_revision_link(name: str, digest: Digest) -> str:
    return f"{manifest_revision(name, digest)}/link"


def tags(name: str) -> str:
    return f"{manifests(name)}/tags"


def tag(name: str, tag: str) -> str:
    return f"{tags(name)}/{tag}"


def tag_current_link(name: str, tag_name: str) -> str:
    return f"{tag(name, tag_name)}/current/link"


def tag_index(name: str, tag_name: str) -> str:
    return f"{tag(name, tag_name)}/index"


def tag_index_entry(name: str, tag_name: str, digest: Digest) -> str:
    return f"{tag_index(name, tag_name)}/{digest.algorithm}/{digest.hex}"


def tag_index_link(name: str, tag_name: str, digest: Digest) -> str:
    return f"{tag_index_entry(name, tag_name, digest)}/link"


def uploads(name: str) -> str:
    return f"{repository(name)}/_uploads"


def upload(name: str, upload_id: str) -> str:
    return f"{uploads(name)}/{upload_id}"


def upload_data(name: str, upload_id: str) -> str:
    return f"{upload(name, upload_id)}/data"


def upload_started_at(name: str, upload_id: str) -> str:
    return f"{upload(name, upload_id)}/startedat"


def upload_hash_state(name: str, upload_id: str, offset: int) -> str:
    """The upload's sha256 at ``offset``, saved by :mod:`~distribution.storage.hashstate` in
    Go's format, but not at Go's ``hashstates/<alg>/<offset>``, which Go reads as its own."""
    return f"{upload(name, upload_id)}/sha256states/{offset}"


def upload_go_hash_state(name: str, upload_id: str, offset: int) -> str:
    """Where Go saves its sha256 state at ``offset`` (read, never written here)."""
    return f"{upload(name, upload_id)}/hashstates/sha256/{offset}"


def referrers(name: str) -> str:
    """Our referrers index (Go skips folders of a repository starting with ``_``)."""
    return f"{repository(name)}/_referrers"


def referrers_indexed(name: str) -> str:
    return f"{referrers(name)}/indexed"


def referrers_of(name: str, subject: Digest) -> str:
    return f"{referrers(name)}/{subject.algorithm}/{subject.hex}"


def referrer_entry(name: str, subject: Digest, digest: Digest) -> str:
    return f"{referrers_of(name, subject)}/{digest.algorithm}/{digest.hex}"


def emptied(name: str) -> str:
    """Our note that a deletion left the repository with nothing (``emptied.py``)."""
    return f"{repository(name)}/{EMPTIED_ENTRY}"


def emptied_note(name: str) -> str:
    return f"{emptied(name)}/at"


# Our own state, beside distribution's folders (the Go registry never looks here).
MAINTENANCE = f"{ROOT}/_maintenance"
GC_TRASH = f"{MAINTENANCE}/gc/trash"


def gc_trash_data(digest: Digest) -> str:
    """Where online garbage collection parks a blob's data before deleting it for good."""
    return f"{GC_TRASH}/{digest.algorithm}/{digest.hex}/data"


def quarantine_data(digest: Digest) -> str:
    """Where ``registry verify --repair`` moves a blob whose content is not its digest's."""
    return f"{MAINTENANCE}/quarantine/{digest.algorithm}/{digest.hex}/data"


#: A sweep noted every repository then empty, and deletions have noted theirs since.
EMPTIED_NOTED = f"{MAINTENANCE}/catalog/emptied-noted"


def maintenance_lease(job: str) -> str:
    """The lease naming the replica that runs cluster-wide maintenance, without Redis."""
    return f"{MAINTENANCE}/leases/{job}"


# Usage, pull times and quotas (``distribution/usage``): batches that every process writes, and
# what the maintenance job makes of them.
JOURNAL = f"{MAINTENANCE}/journal"
USAGE = f"{MAINTENANCE}/usage"
#: What the usage job knows of each repository and manifest, and every pull time.
USAGE_STATE = f"{USAGE}/state.json.gz"
#: The figures per repository, namespace and in total, served to admins.
USAGE_REPORT = f"{USAGE}/report.json.gz"
#: Totals, namespaces and quotas only: what metrics and quota checks read.
USAGE_SUMMARY = f"{USAGE}/summary.json"


def journal_batch(batch_id: str) -> str:
    """One process's batch of pull times and changed repositories, waiting to be merged."""
    return f"{JOURNAL}/{batch_id}"


# The pull-through cache's schedule: Go's file at the driver's root, and our pending records.
SCHEDULER_STATE = "/scheduler-state.json"
PROXY_SCHEDULED = f"{MAINTENANCE}/proxy/scheduled"


def proxy_scheduled(record_id: str) -> str:
    """A request's record of content the pull-through cache stored, for the expiry job."""
    return f"{PROXY_SCHEDULED}/{record_id}"
