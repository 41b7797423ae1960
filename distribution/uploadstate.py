"""The ``_state`` token of a blob upload, byte for byte as the Go registry packs it.

A token is ``urlsafe_b64encode(HMAC_SHA256(secret, J) + J)`` with ``=`` padding, where ``J`` is
compact JSON ``{"Name","UUID","Offset","StartedAt"}`` in that order and ``StartedAt`` is Go's
RFC 3339 with nanoseconds, trailing zeros trimmed. Registries sharing ``http.secret`` (Go or
ours) accept each other's tokens, so a client may move between them mid-upload.

Pure functions, no I/O: a bad token raises :class:`~distribution.errors.BlobUploadInvalid`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from distribution import errors

_MAC_SIZE = hashlib.sha256().digest_size
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?P<fraction>\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})"
)


@dataclass(frozen=True)
class UploadState:
    """What a client carries between the requests of one upload."""

    name: str
    uuid: str
    offset: int
    started_at: datetime


def pack(state: UploadState, secret: str) -> str:
    """The signed token for ``state``."""
    message = json.dumps(
        {
            "Name": state.name,
            "UUID": state.uuid,
            "Offset": state.offset,
            "StartedAt": format_time(state.started_at),
        },
        separators=(",", ":"),
    ).encode()
    return base64.urlsafe_b64encode(_mac(secret, message) + message).decode()


def unpack(token: str, secret: str) -> UploadState:
    """Verify ``token`` (constant-time) and decode it; anything wrong is ``BLOB_UPLOAD_INVALID``."""
    try:
        raw = base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise errors.BlobUploadInvalid(detail="malformed upload state") from None
    mac, message = raw[:_MAC_SIZE], raw[_MAC_SIZE:]
    if len(mac) < _MAC_SIZE or not hmac.compare_digest(mac, _mac(secret, message)):
        raise errors.BlobUploadInvalid(detail="invalid upload state signature")
    try:
        fields = json.loads(message)
        state = UploadState(
            name=fields["Name"],
            uuid=fields["UUID"],
            offset=fields["Offset"],
            started_at=parse_time(fields["StartedAt"]),
        )
    except (ValueError, TypeError, KeyError):
        raise errors.BlobUploadInvalid(detail="malformed upload state") from None
    if not (
        isinstance(state.name, str)
        and isinstance(state.uuid, str)
        and type(state.offset) is int
        and state.offset >= 0
    ):
        raise errors.BlobUploadInvalid(detail="malformed upload state")
    return state


def resume(token: str | None, secret: str, name: str, uuid: str) -> UploadState:
    """The state of upload ``uuid`` in repository ``name``, as the client's token claims it.

    As in Go, a missing, forged or garbled token, or one issued for another repository or
    another upload, is ``BLOB_UPLOAD_INVALID``.
    """
    if not token:
        raise errors.BlobUploadInvalid(detail="missing upload state")
    state = unpack(token, secret)
    if state.name != name:
        raise errors.BlobUploadInvalid(detail="upload state is for another repository")
    if state.uuid != uuid:
        raise errors.BlobUploadInvalid(detail="upload state is for another upload")
    return state


def format_time(moment: datetime) -> str:
    """Go's ``time.RFC3339Nano`` in UTC: fractional seconds without trailing zeros."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def parse_time(text: str) -> datetime:
    """An RFC 3339 time with any offset and up to nanoseconds (kept to microseconds)."""
    match = _RFC3339.fullmatch(text)
    if not match:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    fraction = match["fraction"]
    if fraction:
        text = text.replace(fraction, fraction[:7], 1)
    return datetime.fromisoformat(text).astimezone(UTC)


def _mac(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()
