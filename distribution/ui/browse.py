"""The pages that show content: the repositories, a repository's tags, an image (or an index,
or an artifact), and a manifest or config as stored."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Response, current_app, g, request
from werkzeug.exceptions import NotFound

from distribution import access as rules
from distribution import errors, reference
from distribution.api import access as request_access
from distribution.api import context
from distribution.digest import Digest
from distribution.storage import referrers as referrer_store
from distribution.storage.manifests import ManifestStore
from distribution.ui import cache, facts, pages, usage, versions, web
from distribution.ui.web import bp, state

#: Cosign's tag scheme: signatures, attestations and SBOMs tagged ``sha256-<hex>.<suffix>``.
COSIGN_SUFFIXES = {".sig": "signature", ".att": "attestation", ".sbom": "SBOM"}
SORTS = ("-pushed", "pushed", "-name", "name")
#: Shown of the tags pointing at one manifest, on its page.
TAGS_SHOWN = 50


@bp.route("/", methods=["GET"])
def repositories() -> Response:
    policy, identity = request_access.policy(), g.identity
    visibility = policy.visibility(identity)
    if visibility.nothing and identity.anonymous:
        return web.to_sign_in()
    names, version = state().view.repositories()
    visible = _visible_names(names, version, policy, identity, visibility)
    namespace = request.args.get("ns")
    shown = pages.matching(visible, request.args.get("q", ""), namespace)
    page = pages.paginate(
        shown, pages.page_number(request.args.get("page")), pages.REPOSITORIES_PER_PAGE
    )
    provider = usage.provider(current_app)
    rows = [
        (name, state().view.summarise(name), provider.repository(name) if provider else None)
        for name in page.items
    ]
    return web.page(
        "ui/repositories.html",
        title="Repositories",
        page=page,
        rows=rows,
        visible=len(visible),
        namespaces=pages.namespaces(visible),
        namespace=namespace,
        query=request.args.get("q", ""),
        # The registry's total, like /v2/_usage's, only for who may see every repository.
        total=provider.total() if provider and visibility.everything else None,
    )


@bp.route("/r/<path:name>", methods=["GET"])
def repository(name: str) -> Response:
    web.require_pull(name)
    view = state().view
    try:
        table = view.tags(name)
    except errors.NameUnknown:
        if not view.exists(name):
            raise NotFound(f"There is no repository {name}, or you may not see it.") from None
        table = cache.TagTable(name, {}, None, 0.0, 0)  # manifests pushed by digest only
    sort = request.args.get("sort", SORTS[0])
    sort = sort if sort in SORTS else SORTS[0]
    order = _order(table, sort)
    query = request.args.get("q", "")
    if query.strip():
        needle = query.strip().lower()
        order = [tag for tag in order if needle in tag.lower()]
    page = pages.paginate(order, pages.page_number(request.args.get("page")), pages.TAGS_PER_PAGE)
    rows = []
    for tag in page.items:
        entry = view.tag(name, tag)  # read now: a row shown is never stale
        if entry is not None:
            shown = view.summary(name, entry.digest, table.version)
            rows.append(_TagRow(tag, entry, shown, web.immutable(name, tag)))
    deletable = web.delete_note(name) is None
    summary = view.summarise(name, table)
    return web.page(
        "ui/repository.html",
        title=name,
        name=name,
        page=page,
        rows=rows,
        sort=sort,
        query=query,
        summary=summary,
        deletable=deletable,
        delete_note=web.delete_note(name),
        pull=f"docker pull {web.registry_host()}/{name}",
        complete=table.complete,
    )


@bp.route("/r/<path:name>/-/manifests/<reference>", methods=["GET"])
def manifest(name: str, reference: str) -> Response:
    web.require_pull(name)
    view = state().view
    digest, tag = _resolve(name, reference)
    found = view.manifest(digest)
    config = None
    if (
        found.kind == facts.IMAGE
        and found.config
        and found.config.media_type in facts.IMAGE_CONFIGS
    ):
        config = view.config(found.config.digest)
    try:
        table = view.tags(name)
        tags = sorted(view.tags_of(table, digest), key=versions.key)
    except errors.NameUnknown:
        table, tags = None, []
    body = view.read(digest)
    config_body = view.read(found.config.digest) if config is not None and found.config else None
    return web.page(
        "ui/manifest.html",
        title=f"{name}:{tag}" if tag else f"{name}@{pages.short_digest(digest)}",
        name=name,
        digest=digest,
        tag=tag,
        manifest=found,
        summary=view.summary(name, digest, table.version if table else None),
        config=config,
        artifact_type=facts.artifact_type(found) if found.kind == facts.ARTIFACT else "",
        children=view.children(name, digest, table.version if table else None),
        parent=_parent(request.args.get("index")),
        tags=tags[:TAGS_SHOWN],
        more_tags=max(0, len(tags) - TAGS_SHOWN),
        pushed=max((table.entries[t].pushed for t in tags), default=None) if table else None,
        referrers=_referrers(name, digest, table),
        raw=facts.pretty_json(body) if body is not None else None,
        raw_config=facts.pretty_json(config_body) if config_body is not None else None,
        pull=f"docker pull {web.registry_host()}/{name}@{digest}",
        links=_links(found, config),
    )


@bp.route("/r/<path:name>/-/manifests/<reference>/raw", methods=["GET"])
def raw_manifest(name: str, reference: str) -> Response:
    """The manifest's bytes as stored, as plain text (never interpreted by the browser)."""
    web.require_pull(name)
    digest, _ = _resolve(name, reference)
    return web.plain(state().view.read(digest))


@bp.route("/r/<path:name>/-/manifests/<reference>/config", methods=["GET"])
def raw_config(name: str, reference: str) -> Response:
    """The config of an image or artifact manifest, as plain text."""
    web.require_pull(name)
    digest, _ = _resolve(name, reference)
    found = state().view.manifest(digest)
    if found.config is None:
        raise NotFound("this manifest has no config")
    return web.plain(state().view.read(found.config.digest))


@dataclass(frozen=True)
class _TagRow:
    tag: str
    entry: cache.TagEntry
    summary: facts.Summary
    immutable: str | None


def _visible_names(
    names: list[str],
    version: int,
    policy: rules.Policy,
    identity: rules.Identity,
    visibility: rules.Visibility,
) -> list[str]:
    """The names ``identity`` may pull, remembered per list version, policy and identity."""
    if visibility.everything:
        return names
    memo = state().visible
    key = (version, id(policy), identity)
    found = memo.get(key)
    if found is not None and found[0] is policy:
        return found[1]
    visible = [name for name in names if visibility.includes(name)]
    if len(memo) > 64:
        memo.clear()
    memo[key] = (policy, visible)
    return visible


def _order(table: cache.TagTable, sort: str) -> list[str]:
    entries = table.entries
    by = sort.lstrip("-")
    if by == "name":
        ascending = table.order("name", versions.key)
    else:
        ascending = table.order("pushed", lambda tag: (entries[tag].pushed, versions.key(tag)))
    if not sort.startswith("-"):
        return ascending
    descending = table._orders.get(sort)
    if descending is None:
        descending = table._orders[sort] = ascending[::-1]
    return descending


def _resolve(name: str, text: str) -> tuple[str, str | None]:
    """``(digest, tag)`` of a tag or digest of ``name``; 404 when the repository lacks it."""
    if reference.is_tag(text):
        entry = state().view.tag(name, text)
        if entry is None:
            raise NotFound(f"{name} has no tag {text}.")
        return entry.digest, text
    try:
        digest = Digest.parse(text)
    except errors.DigestInvalid:
        raise NotFound(f"{text} is neither a tag nor a digest.") from None
    if not ManifestStore(context.registry().blobs, name).exists(digest):
        raise NotFound(f"{name} has no manifest {digest}.")
    return str(digest), None


def _parent(text: str | None) -> str | None:
    """The index a platform's page was reached from (``?index=``), if it is a digest."""
    try:
        return str(Digest.parse(text)) if text else None
    except errors.DigestInvalid:
        return None


def _referrers(
    name: str, digest: str, table: cache.TagTable | None
) -> list[tuple[str, list[dict[str, Any]]]]:
    """The referrers of ``digest`` by artifact type: from the referrers API's index, and
    tags of cosign's tag scheme (``sha256-<hex>.sig``)."""
    store = ManifestStore(context.registry().blobs, name)
    groups: dict[str, list[dict[str, Any]]] = {}
    for found in referrer_store.referrers(store, Digest.parse(digest)):
        kind = str(found.get("artifactType") or found.get("mediaType") or "unknown")
        groups.setdefault(kind, []).append(
            {
                "digest": str(found.get("digest", "")),
                "size": found.get("size") if isinstance(found.get("size"), int) else None,
                "annotations": sorted(
                    (str(k), str(v)) for k, v in (found.get("annotations") or {}).items()
                )
                if isinstance(found.get("annotations"), dict)
                else [],
                "tag": None,
            }
        )
    if table is not None:
        stem = digest.replace(":", "-")
        for suffix, label in COSIGN_SUFFIXES.items():
            entry = table.entries.get(stem + suffix)
            if entry is not None:
                groups.setdefault(f"cosign {label} (tag {stem + suffix})", []).append(
                    {"digest": entry.digest, "size": None, "annotations": [], "tag": stem + suffix}
                )
    return sorted(groups.items())


def _links(found: facts.ManifestFacts, config: facts.ConfigFacts | None) -> list[tuple[str, str]]:
    """Web links the image declares (source, documentation), if they are http(s) URLs."""
    keys = (
        "org.opencontainers.image.source",
        "org.opencontainers.image.url",
        "org.opencontainers.image.documentation",
    )
    found_links: dict[str, str] = {}
    for key, value in [*found.annotations, *(config.labels if config else ())]:
        if (
            key in keys
            and value.startswith(("https://", "http://"))
            and len(value) < 2048
            and value.isprintable()
        ):
            found_links.setdefault(key.rsplit(".", 1)[1], value)
    return sorted(found_links.items())
