"""The registry's error model: one exception class per OCI error code.

Every error the API can answer with is declared here once, with its HTTP status and default
message; handlers raise, and ``app.py`` renders them as OCI error JSON in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class RegistryError(Exception):
    """An error with an OCI error code, rendered as ``{"errors": [...]}``."""

    code = "UNKNOWN"
    status = 500
    message = "unknown error"

    def __init__(
        self,
        message: str | None = None,
        detail: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message or self.message)
        if message:
            self.message = message
        self.detail = detail
        #: Response headers the error carries, such as ``Content-Range`` on a 416.
        self.headers = dict(headers or {})

    def to_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            entry["detail"] = self.detail
        return entry


def _code(code: str, status: int, message: str) -> type[RegistryError]:
    name = "".join(part.title() for part in code.split("_"))
    return type(name, (RegistryError,), {"code": code, "status": status, "message": message})


Unknown = RegistryError
Unsupported = _code("UNSUPPORTED", 405, "The operation is unsupported.")
Unauthorized = _code("UNAUTHORIZED", 401, "authentication required")
Denied = _code("DENIED", 403, "requested access to the resource is denied")
Unavailable = _code("UNAVAILABLE", 503, "service unavailable")
TooManyRequests = _code("TOOMANYREQUESTS", 429, "too many requests")
DigestInvalid = _code("DIGEST_INVALID", 400, "provided digest did not match uploaded content")
SizeInvalid = _code("SIZE_INVALID", 400, "provided length did not match content length")
RangeInvalid = _code("RANGE_INVALID", 416, "invalid content range")
NameInvalid = _code("NAME_INVALID", 400, "invalid repository name")
TagInvalid = _code("TAG_INVALID", 400, "manifest tag did not match URI")
NameUnknown = _code("NAME_UNKNOWN", 404, "repository name not known to registry")
ManifestUnknown = _code("MANIFEST_UNKNOWN", 404, "manifest unknown")
ManifestInvalid = _code("MANIFEST_INVALID", 400, "manifest invalid")
ManifestBlobUnknown = _code("MANIFEST_BLOB_UNKNOWN", 400, "blob unknown to registry")
BlobUnknown = _code("BLOB_UNKNOWN", 404, "blob unknown to registry")
BlobUploadUnknown = _code("BLOB_UPLOAD_UNKNOWN", 404, "blob upload unknown to registry")
BlobUploadInvalid = _code("BLOB_UPLOAD_INVALID", 404, "blob upload invalid")
PaginationNumberInvalid = _code(
    "PAGINATION_NUMBER_INVALID", 400, "invalid number of results requested"
)
