"""A driver for Google Cloud Storage, laid out and configured like distribution's Go ``gcs``.

Objects are named by their path below ``rootdirectory``; directories are only name prefixes.
Large writers stream through GCS resumable upload sessions. A writer closed before commit
stores its session as a small object at its own path (content type
``application/x-docker-upload-session``, the session URL and bytes sent in its metadata, the
not yet sendable tail as its content), exactly as the Go driver does, so the next writer, in
any process, Go's or ours, continues the same session. Before 256 KiB no session exists yet and
the object says so with an empty session URL, as Go's does (Go 2.8 resumes nothing else). Such
an object is no readable file until a writer commits it. A chunk GCS stores only in part (its
308 answer's ``Range``) is sent on from where GCS stopped. A session the service no longer
knows (expired after a week, or an emulator restarted) cannot be continued: its file is
removed and the writer reports it missing, so the upload starts again from 0.

``STORAGE_EMULATOR_HOST`` is honoured as Google's libraries do: API calls go to the emulator
anonymously, while given service-account credentials still sign redirect URLs.

Every call is retried on throttling (429), server errors (5xx), timeouts and dropped
connections, with exponential backoff from ``retry_delay`` and at most ``max_retries`` retries
(Go's driver: 1 s doubling, 5 tries); both are our extension parameters, named as the azure
driver's. Start-up fails when the bucket does not exist or the credentials are refused.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

import google.auth
import google.auth.exceptions
import requests
from google.api_core import exceptions as google_exceptions
from google.api_core.client_info import ClientInfo
from google.api_core.retry import Retry
from google.auth import credentials as auth_credentials
from google.auth.transport.requests import AuthorizedSession
from google.cloud import storage
from google.oauth2 import service_account

from distribution import duration
from distribution.storage.driver.base import (
    FileInfo,
    FileWriter,
    InvalidOffsetError,
    InvalidParameterError,
    PathNotFoundError,
    SkipFn,
    StorageDriver,
    StorageDriverError,
    skipped,
)

SESSION_CONTENT_TYPE = "application/x-docker-upload-session"
MIN_CHUNK_SIZE = 256 * 1024
DEFAULT_CHUNK_SIZE = 16 * 1024 * 1024
SIGNED_URL_EXPIRY = timedelta(minutes=20)
HTTP_TIMEOUT = 60
#: Go's driver makes 5 tries, pausing 1 s, doubling.
DEFAULT_MAX_RETRIES = 4
DEFAULT_RETRY_DELAY = 1.0
_SCOPE = "https://www.googleapis.com/auth/devstorage.full_control"


def from_parameters(parameters: Mapping[str, Any]) -> GCSDriver:
    """Build the driver from the ``storage.gcs`` config section."""
    bucket = parameters.get("bucket")
    if not bucket or not isinstance(bucket, str):
        raise InvalidParameterError("bucket", "no bucket name given")
    credentials = _credentials(parameters)
    emulator = os.environ.get("STORAGE_EMULATOR_HOST")
    if credentials is None and emulator:
        credentials = auth_credentials.AnonymousCredentials()
    elif credentials is None:
        try:
            credentials, _ = google.auth.default(scopes=[_SCOPE])
        except google.auth.exceptions.DefaultCredentialsError as exc:
            raise InvalidParameterError("keyfile", f"none given and {exc}") from exc
    return GCSDriver(
        bucket=bucket,
        credentials=credentials,
        rootdirectory=str(parameters.get("rootdirectory") or ""),
        chunksize=_chunksize(parameters.get("chunksize", DEFAULT_CHUNK_SIZE)),
        emulator=emulator,
        max_retries=_max_retries(parameters.get("max_retries", DEFAULT_MAX_RETRIES)),
        retry_delay=_retry_delay(parameters.get("retry_delay", DEFAULT_RETRY_DELAY)),
        useragent=_useragent(parameters.get("useragent")),
    )


class GCSDriver(StorageDriver):
    """Storage in one bucket of the project the credentials belong to."""

    def __init__(
        self,
        bucket: str,
        credentials: auth_credentials.Credentials,
        rootdirectory: str = "",
        chunksize: int = DEFAULT_CHUNK_SIZE,
        emulator: str | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry_delay: float = DEFAULT_RETRY_DELAY,
        useragent: str | None = None,
    ) -> None:
        project = getattr(credentials, "project_id", None)
        # An emulator takes no tokens: the credentials only sign URLs there.
        api_credentials = auth_credentials.AnonymousCredentials() if emulator else credentials
        client_info = ClientInfo(user_agent=useragent) if useragent else None
        self._client = storage.Client(
            project=project, credentials=api_credentials, client_info=client_info
        )
        self._bucket = self._client.bucket(bucket)
        self._credentials = credentials
        self._http = AuthorizedSession(api_credentials)
        if useragent:  # Go's ``useragent``: every request says it
            self._http.headers["User-Agent"] = useragent
        self._prefix = rootdirectory.strip("/") + "/" if rootdirectory.strip("/") else ""
        self._chunksize = chunksize
        self._emulator = emulator
        self._max_retries = max_retries
        self._retry_delay = retry_delay
        self._retry = _retry_policy(max_retries, retry_delay)

    @property
    def name(self) -> str:
        return "gcs"

    def get_content(self, path: str) -> bytes:
        with _translated(path):
            return self._readable_blob(path).download_as_bytes(
                timeout=HTTP_TIMEOUT, retry=self._retry
            )

    def put_content(self, path: str, data: bytes, *, durable: bool = True) -> None:
        with _translated(path):
            self._upload(self._key(path), bytes(data))

    def reader(self, path: str, offset: int = 0) -> BinaryIO:
        with _translated(path):
            blob = self._readable_blob(path)
            if offset > (blob.size or 0):
                raise InvalidOffsetError(path, offset)
            f = blob.open("rb", chunk_size=self._chunksize, retry=self._retry)
            f.seek(offset)
            return io.BufferedReader(_Reader(path, f), self._chunksize)  # type: ignore[arg-type]

    def writer(self, path: str, append: bool = False) -> FileWriter:
        with _translated(path):
            blob = self._get_blob(self._key(path)) if append else None
            if append and blob is None:
                raise PathNotFoundError(path)
            writer = _Writer(self, self._key(path))
            if blob is not None:
                writer.resume(blob)
            return writer

    def stat(self, path: str) -> FileInfo:
        with _translated(path):
            key = self._key(path)
            blob = self._get_blob(key) if path != "/" else None
            if blob is not None:
                return FileInfo(path, _logical_size(blob), _mtime(blob), is_dir=False)
            prefix = self._dir_prefix(path)
            for child in self._list(prefix=prefix, max_results=1):
                return FileInfo(path, 0, _mtime(child), is_dir=True)
            if path == "/":
                return FileInfo(path, 0, datetime.now(UTC), is_dir=True)
            raise PathNotFoundError(path)

    def list(self, path: str) -> list[str]:
        with _translated(path):
            prefix = self._dir_prefix(path)
            pages = self._list(prefix=prefix, delimiter="/")
            # A folder placeholder (the console's "create folder") is named like the prefix.
            names = {blob.name for blob in pages if blob.name != prefix}
            names.update(sub.rstrip("/") for sub in pages.prefixes)
            if not names and path != "/":
                raise PathNotFoundError(path)
            base = path.rstrip("/")
            return sorted(f"{base}/{name[len(prefix) :]}" for name in names)

    def has_children(self, path: str) -> bool:
        """One request for two objects at most (a folder placeholder sorts first)."""
        prefix = self._dir_prefix(path)
        with _translated(path):
            return any(blob.name != prefix for blob in self._list(prefix=prefix, max_results=2))

    def files(self, path: str, skip: SkipFn = lambda folder: False) -> Iterator[FileInfo]:
        """One listing of every object under the prefix, a page at a time."""
        prefix = self._dir_prefix(path)
        base = path.rstrip("/")
        with _translated(path):
            for blob in self._list(prefix=prefix):
                if blob.name.endswith("/"):
                    continue  # a folder placeholder
                child = f"{base}/{blob.name[len(prefix) :]}"
                if not skipped(child, path, skip):
                    yield FileInfo(child, _logical_size(blob), _mtime(blob), False)

    def move(self, src: str, dst: str) -> None:
        with _translated(src):
            source = self._get_blob(self._key(src))
            if source is None:
                raise PathNotFoundError(src)
            target = self._bucket.blob(self._key(dst))
            token, _, _ = target.rewrite(source, timeout=HTTP_TIMEOUT, retry=self._retry)
            while token is not None:
                token, _, _ = target.rewrite(
                    source, token=token, timeout=HTTP_TIMEOUT, retry=self._retry
                )
            with suppress(google_exceptions.NotFound):
                source.delete(timeout=HTTP_TIMEOUT, retry=self._retry)

    def delete(self, path: str) -> None:
        with _translated(path):
            key = self._key(path)
            blobs = list(self._list(prefix=key + "/"))
            blobs += [blob for blob in (self._get_blob(key),) if blob is not None]
            if not blobs:
                raise PathNotFoundError(path)
            for blob in blobs:
                with suppress(google_exceptions.NotFound):
                    blob.delete(timeout=HTTP_TIMEOUT, retry=self._retry)

    def redirect_url(self, path: str, method: str = "GET") -> str | None:
        """A V4 signed URL, when the credentials hold a key that can sign one."""
        signing = isinstance(self._credentials, auth_credentials.Signing)
        if method not in ("GET", "HEAD") or not signing:
            return None
        with _translated(path):
            return self._bucket.blob(self._key(path)).generate_signed_url(
                version="v4",
                expiration=SIGNED_URL_EXPIRY,
                method=method,
                api_access_endpoint=self._emulator,
                credentials=self._credentials,
            )

    def verify(self) -> None:
        """Fail at start-up, in one line, rather than on the first request. Listing needs
        only object permissions, which is all a registry's service account may have."""
        bucket = self._bucket.name
        try:
            next(iter(self._list(max_results=1)), None)
        except google_exceptions.NotFound as exc:
            raise StorageDriverError(f"bucket {bucket!r} does not exist", "gcs") from exc
        except google_exceptions.Forbidden as exc:
            message = f"credentials refused for bucket {bucket!r}: {exc.message}"
            raise StorageDriverError(message, "gcs") from exc
        except (
            google_exceptions.GoogleAPIError,
            google.auth.exceptions.GoogleAuthError,
            requests.RequestException,
        ) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise StorageDriverError(f"cannot reach bucket {bucket!r}: {reason}", "gcs") from exc

    def _get_blob(self, key: str) -> storage.Blob | None:
        return self._bucket.get_blob(key, timeout=HTTP_TIMEOUT, retry=self._retry)

    def _list(self, **options: Any) -> Any:
        return self._client.list_blobs(
            self._bucket, timeout=HTTP_TIMEOUT, retry=self._retry, **options
        )

    def _put(self, url: str, data: bytes, headers: dict[str, str]) -> requests.Response:
        """PUT one chunk to an upload session, tried at most ``max_retries`` more times after
        a 429 or 5xx answer, a timeout or a dropped connection, pausing ``retry_delay``
        doubling each time (with jitter), as Go's driver does."""
        attempt = 0
        while True:
            try:
                response = self._http.put(url, data=data, headers=headers, timeout=HTTP_TIMEOUT)
            except requests.RequestException as exc:
                if attempt == self._max_retries or not _transient(exc):
                    raise
            else:
                if response.status_code != 429 and response.status_code < 500:
                    return response
                if attempt == self._max_retries:
                    raise google_exceptions.from_http_response(response)
            time.sleep(self._retry_delay * 2**attempt * random.uniform(0.5, 1.5))
            attempt += 1

    def _key(self, path: str) -> str:
        return self._prefix + path.lstrip("/")

    def _dir_prefix(self, path: str) -> str:
        return self._prefix if path == "/" else self._key(path) + "/"

    def _readable_blob(self, path: str) -> storage.Blob:
        """The committed object at ``path``; an upload still in progress is not readable."""
        blob = self._get_blob(self._key(path))
        if blob is None or blob.content_type == SESSION_CONTENT_TYPE:
            raise PathNotFoundError(path)
        return blob

    def _upload(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> None:
        blob = self._bucket.blob(key)
        blob.metadata = metadata
        content_type = SESSION_CONTENT_TYPE if metadata else "application/octet-stream"
        blob.upload_from_string(
            data, content_type=content_type, timeout=HTTP_TIMEOUT, retry=self._retry
        )


class _Writer(FileWriter):
    """Buffers up to one chunk, then sends whole chunks to a resumable upload session.

    Chunks sent before the last must be multiples of 256 KiB, so closing without commit keeps
    the shorter tail in the session object rather than sending it.
    """

    def __init__(self, driver: GCSDriver, key: str) -> None:
        super().__init__()
        self._driver = driver
        self._key = key
        self._buffer = bytearray()
        self._session: str | None = None
        self._offset = 0
        self._lost = False
        #: Whether the session object must be (re)written at close: not for a resumed
        #: session nothing was written to (a PATCH refused at its offset writes nothing).
        self._changed = True

    def resume(self, blob: storage.Blob) -> None:
        """Continue ``blob``: its upload session if it is one, else a copy of its content."""
        if blob.content_type == SESSION_CONTENT_TYPE:
            # Go writes "" for a session not started yet (under 256 KiB sent), and may leave
            # the offset empty.
            metadata = blob.metadata or {}
            self._session = metadata.get("Session-URI") or None
            try:
                self._offset = int(metadata.get("Offset") or 0)
            except ValueError:
                raise StorageDriverError(
                    f"{self._key}: upload session object has a bad Offset"
                ) from None
            if self._offset and self._session is None:
                raise StorageDriverError(f"{self._key}: upload session object has no session")
            self._buffer = bytearray(
                blob.download_as_bytes(timeout=HTTP_TIMEOUT, retry=self._driver._retry)
            )
            self._size = self._offset + len(self._buffer)
            self._changed = False
            return
        chunk = self._driver._chunksize
        with blob.open("rb", chunk_size=chunk, retry=self._driver._retry) as existing:
            while data := existing.read(chunk):
                self.write(data)

    def _write(self, data: bytes) -> int:
        self._changed = True
        with _translated(self._key):
            self._buffer += data
            chunk = self._driver._chunksize
            while len(self._buffer) >= chunk:
                self._send(chunk, final=False)
        return len(data)

    def _close(self) -> None:
        if self._committed or self._lost or not self._changed:
            return
        # Always a session object, as Go's Close writes it: Go 2.8 resumes nothing else.
        with _translated(self._key):
            self._send(len(self._buffer) // MIN_CHUNK_SIZE * MIN_CHUNK_SIZE, final=False)
            metadata = {"Session-URI": self._session or "", "Offset": str(self._offset)}
            self._driver._upload(self._key, bytes(self._buffer), metadata)
        self._buffer = bytearray()

    def _cancel(self) -> None:
        with _translated(self._key):
            if self._session is not None:
                # An abandoned session expires by itself within a week.
                with suppress(requests.RequestException):
                    self._driver._http.delete(self._session, timeout=HTTP_TIMEOUT)
            with suppress(google_exceptions.NotFound):
                self._driver._bucket.blob(self._key).delete(
                    timeout=HTTP_TIMEOUT, retry=self._driver._retry
                )
        self._buffer = bytearray()

    def _commit(self) -> None:
        with _translated(self._key):
            if self._session is None:
                self._driver._upload(self._key, bytes(self._buffer))
            else:
                self._send(len(self._buffer), final=True)
        self._buffer = bytearray()

    def _send(self, length: int, final: bool) -> None:
        """Send the first ``length`` buffered bytes; ``final`` completes the object."""
        if length == 0 and not final:
            return
        if self._session is None:
            blob = self._driver._bucket.blob(self._key)
            self._session = blob.create_resumable_upload_session(
                content_type="application/octet-stream",
                timeout=HTTP_TIMEOUT,
                retry=self._driver._retry,
            )
        end = self._offset + length
        total = str(end) if final else "*"
        while True:
            sending = end - self._offset
            span = f"{self._offset}-{end - 1}" if sending else "*"
            response = self._driver._put(
                self._session,
                bytes(self._buffer[:sending]),
                {"Content-Range": f"bytes {span}/{total}"},
            )
            if response.status_code in (404, 410):
                self._forget_lost_session()
            if final and response.status_code in (200, 201):
                self._buffer = bytearray()
                self._offset = end
                return
            # A 308 says how much the session holds now, which may be less than was sent.
            stored = _persisted(response) - self._offset if response.status_code == 308 else 0
            if not 0 < stored <= sending:
                raise StorageDriverError(
                    f"upload of {self._key} at offset {self._offset} failed: "
                    f"{response.status_code} {response.text[:200]}"
                )
            del self._buffer[:stored]
            self._offset += stored
            if self._offset == end and not final:
                return

    def _forget_lost_session(self) -> None:
        """The service no longer knows the session (expired, cancelled, or an emulator that
        restarted): what it held is gone, so the file is removed rather than left claiming
        bytes nobody has, and the caller learns the file is not there."""
        self._lost = True
        self._buffer = bytearray()
        with suppress(google_exceptions.NotFound):
            self._driver._bucket.blob(self._key).delete(
                timeout=HTTP_TIMEOUT, retry=self._driver._retry
            )
        raise PathNotFoundError(self._key)


def _persisted(response: requests.Response) -> int:
    """The bytes a 308 says the session holds: its ``Range: bytes=0-N`` gives N + 1, and
    without one nothing was persisted yet."""
    found = re.fullmatch(r"bytes=0-(\d+)", response.headers.get("Range", "").strip())
    return int(found.group(1)) + 1 if found else 0


class _Reader(io.RawIOBase):
    """The client library's download stream, its errors turned into the driver's."""

    def __init__(self, path: str, inner: BinaryIO) -> None:
        self._path = path
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        with _translated(self._path):
            data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._inner.close()
        super().close()


@contextmanager
def _translated(path: str) -> Iterator[None]:
    """Turn the client libraries' errors into the driver contract's."""
    try:
        yield
    except google_exceptions.NotFound as exc:
        raise PathNotFoundError(path) from exc
    except (
        google_exceptions.GoogleAPIError,
        google_exceptions.RetryError,
        google.auth.exceptions.GoogleAuthError,
        requests.RequestException,
    ) as exc:
        raise StorageDriverError(str(exc)) from exc


def _useragent(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidParameterError("useragent", f"not a string: {value!r}")
    return value or None


def _credentials(parameters: Mapping[str, Any]) -> auth_credentials.Credentials | None:
    """Service-account credentials from ``keyfile`` or ``credentials``, if either is given."""
    keyfile = parameters.get("keyfile")
    info = parameters.get("credentials")
    if keyfile and info:
        raise InvalidParameterError("credentials", "give either keyfile or credentials, not both")
    try:
        if keyfile:
            return service_account.Credentials.from_service_account_file(
                str(keyfile), scopes=[_SCOPE]
            )
        if info:
            if isinstance(info, str):
                info = json.loads(info)
            return service_account.Credentials.from_service_account_info(
                dict(info), scopes=[_SCOPE]
            )
    except (OSError, ValueError, TypeError) as exc:
        parameter = "keyfile" if keyfile else "credentials"
        raise InvalidParameterError(parameter, f"unusable service account: {exc}") from exc
    return None


def _chunksize(value: Any) -> int:
    """Go accepts an int or a numeric string; resumable chunks must be 256 KiB multiples."""
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise InvalidParameterError("chunksize", f"not an integer: {value!r}") from None
    if size < MIN_CHUNK_SIZE or size % MIN_CHUNK_SIZE:
        raise InvalidParameterError(
            "chunksize", f"must be a positive multiple of {MIN_CHUNK_SIZE}, not {size}"
        )
    return size


def _max_retries(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidParameterError("max_retries", f"not a non-negative integer: {value!r}")
    return value


def _retry_delay(value: Any) -> float:
    """Seconds from a Go duration (``"100ms"``, ``"1s"``) or a plain number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    nanoseconds = duration.parse(str(value).strip())
    if nanoseconds is not None and nanoseconds >= 0:
        return nanoseconds / 1e9
    raise InvalidParameterError("retry_delay", f"not a duration like '1s': {value!r}")


def _retry_policy(max_retries: int, delay: float) -> Retry | None:
    """Backoff from ``delay``, doubling, for about ``max_retries`` retries (api_core bounds a
    retry by total time, so the budget is the sum of the pauses); None retries nothing."""
    if max_retries == 0:
        return None
    delay = max(delay, 0.001)
    return Retry(
        predicate=_transient,
        initial=delay,
        multiplier=2,
        maximum=delay * 2**max_retries,
        timeout=delay * (2 ** (max_retries + 1) - 1),
    )


def _transient(exc: BaseException) -> bool:
    """Worth another try: throttling, a server error, a timeout or a dropped connection."""
    if isinstance(exc, google_exceptions.GoogleAPICallError):
        code = exc.code or 0
        return code == 429 or code >= 500
    return isinstance(
        exc,
        requests.ConnectionError
        | requests.Timeout
        | requests.exceptions.ChunkedEncodingError
        | google.auth.exceptions.TransportError,
    )


def _logical_size(blob: storage.Blob) -> int:
    """An upload session object stands for the bytes sent plus the tail it holds."""
    if blob.content_type == SESSION_CONTENT_TYPE and blob.metadata:
        offset = blob.metadata.get("Offset") or "0"
        return (int(offset) if offset.isdigit() else 0) + (blob.size or 0)
    return blob.size or 0


def _mtime(blob: storage.Blob) -> datetime:
    return blob.updated or datetime.now(UTC)
