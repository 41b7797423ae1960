"""A driver for Azure Blob Storage, laid out and configured like distribution's Go ``azure``.

Blobs are named by their path below ``rootdirectory``; directories are only name prefixes.
Writers write append blobs, as the Go driver does: an append blob is visible (``stat`` gives
its size) after every block, any process resumes it by appending at its current length, and a
Go replica can resume an upload this driver started, and the reverse. Staged block blobs would
allow bigger, parallel blocks, but their uncommitted blocks are invisible until committed and a
Go replica cannot append to them. Append blocks are at most 4 MiB, so a writer buffers at most
4 MiB. Every append is conditional on the expected position, so a retried append never
duplicates data.

Like the current Go driver, the container is not created: it must exist, and start-up fails
with a clear error when it does not.
"""

from __future__ import annotations

import io
import random
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, cast

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.storage.blob import (
    BlobClient,
    BlobSasPermissions,
    BlobServiceClient,
    BlobType,
    ContainerClient,
    ExponentialRetry,
    generate_blob_sas,
)

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

DEFAULT_REALM = "core.windows.net"
DEFAULT_MAX_RETRIES = 5
DEFAULT_RETRY_DELAY = "100ms"
#: The largest append block Azure accepts; also what a reader fetches per request.
BLOCK_SIZE = 4 * 1024 * 1024
#: As Go's driver: long enough to start a pull, short enough to be worthless when leaked.
SAS_EXPIRY = timedelta(minutes=20)
#: A server-side copy still pending after this long is aborted.
COPY_TIMEOUT = timedelta(minutes=10)
CONNECTION_TIMEOUT = 20
READ_TIMEOUT = 60
CREDENTIAL_TYPES = ("shared_key", "client_secret", "default_credentials")


def from_parameters(parameters: Mapping[str, Any]) -> AzureDriver:
    """Build the driver from the ``storage.azure`` config section.

    As in Go, ``max_retries`` 0 (or unset) is the default of 5 and a negative one means no
    retries; ``skipverify`` turns off certificate verification of the service.
    """
    accountname = _string(parameters, "accountname")
    if not accountname:
        raise InvalidParameterError("accountname", "no account name given")
    container = _string(parameters, "container")
    if not container:
        raise InvalidParameterError("container", "no container name given")
    serviceurl = service_url(parameters)
    if not serviceurl.startswith(("http://", "https://")):
        raise InvalidParameterError("serviceurl", f"not an http(s) URL: {serviceurl!r}")
    accountkey = _string(parameters, "accountkey")
    credential = _credential(parameters.get("credentials"), accountname, accountkey)
    if not isinstance(credential, dict) and not serviceurl.startswith("https://"):
        message = "Azure AD credentials (client_secret, default_credentials) need https://"
        raise InvalidParameterError("serviceurl", f"{message}, not {serviceurl!r}")
    max_retries = parameters.get("max_retries") or DEFAULT_MAX_RETRIES
    if not isinstance(max_retries, int) or isinstance(max_retries, bool):
        raise InvalidParameterError("max_retries", f"not an integer: {max_retries!r}")
    skipverify = parameters.get("skipverify", False)
    if not isinstance(skipverify, bool):
        raise InvalidParameterError("skipverify", f"not true or false: {skipverify!r}")
    return AzureDriver(
        serviceurl=serviceurl,
        accountname=accountname,
        container=container,
        credential=credential,
        rootdirectory=_string(parameters, "rootdirectory"),
        max_retries=max(max_retries, 0),
        retry_delay=_duration("retry_delay", parameters.get("retry_delay", DEFAULT_RETRY_DELAY)),
        skipverify=skipverify,
    )


def service_url(parameters: Mapping[str, Any]) -> str:
    """``serviceurl`` (our extension), else Go's ``https://<accountname>.blob.<realm>``."""
    realm = _string(parameters, "realm") or DEFAULT_REALM
    accountname = _string(parameters, "accountname")
    return _string(parameters, "serviceurl") or f"https://{accountname}.blob.{realm}"


class AzureDriver(StorageDriver):
    """Storage in one container; ``credential`` is an account key dict or a token credential."""

    def __init__(
        self,
        serviceurl: str,
        accountname: str,
        container: str,
        credential: Any,
        rootdirectory: str = "",
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry_delay: float = 0.1,
        skipverify: bool = False,
    ) -> None:
        self._accountname = accountname
        self._accountkey = credential.get("account_key") if isinstance(credential, dict) else None
        self._retry_delay = retry_delay
        retry = _Backoff(retry_delay, max_retries)
        service = BlobServiceClient(
            serviceurl,
            credential=credential,
            retry_policy=retry,
            connection_timeout=CONNECTION_TIMEOUT,
            read_timeout=READ_TIMEOUT,
            max_single_get_size=BLOCK_SIZE,
            max_chunk_get_size=BLOCK_SIZE,
            connection_verify=not skipverify,
        )
        self._container: ContainerClient = service.get_container_client(container)
        root = rootdirectory.strip("/")
        self._root = f"{root}/" if root else ""

    @property
    def name(self) -> str:
        return "azure"

    def get_content(self, path: str) -> bytes:
        with _errors(path):
            return self._blob(path).download_blob().readall()

    def put_content(self, path: str, data: bytes, *, durable: bool = True) -> None:
        """One Put Blob, so readers see old or new; an append blob there is deleted first,
        as Put Blob cannot replace it (Go's driver does the same)."""
        blob = self._blob(path)
        with _errors(path):
            try:
                blob.upload_blob(bytes(data), overwrite=True)
            except HttpResponseError as exc:
                if exc.error_code != "InvalidBlobType":
                    raise
                blob.delete_blob()
                blob.upload_blob(bytes(data), overwrite=True)

    def reader(self, path: str, offset: int = 0) -> BinaryIO:
        blob = self._blob(path)
        with _errors(path):
            properties = blob.get_blob_properties()
            if offset < 0 or offset > properties.size:
                raise InvalidOffsetError(path, offset)
            if offset == properties.size:
                return io.BytesIO()
            stream = blob.download_blob(offset=offset)
        return cast(BinaryIO, _Reader(path, stream.chunks()))

    def writer(self, path: str, append: bool = False) -> FileWriter:
        blob = self._blob(path)
        with _errors(path):
            if not append:
                try:
                    blob.create_append_blob()
                except HttpResponseError as exc:
                    if exc.error_code != "InvalidBlobType":
                        raise
                    blob.delete_blob()
                    blob.create_append_blob()
                return _Writer(path, blob, 0)
            properties = blob.get_blob_properties()
            if properties.blob_type != BlobType.APPENDBLOB:
                return _Writer(path, blob, self._convert_to_append_blob(blob))
            return _Writer(path, blob, properties.size)

    def stat(self, path: str) -> FileInfo:
        with _errors(path):
            if path != "/":
                with suppress(ResourceNotFoundError):
                    properties = self._blob(path).get_blob_properties()
                    return FileInfo(path, properties.size, properties.last_modified, False)
            blobs = self._container.list_blobs(self._prefix(path), results_per_page=1)
            first = next(iter(blobs), None)
        if first is None:
            raise PathNotFoundError(path)
        return FileInfo(path, 0, first.last_modified, True)

    def list(self, path: str) -> list[str]:
        prefix = self._prefix(path)
        with _errors(path):
            names = {item.name for item in self._container.walk_blobs(prefix, delimiter="/")}
        if not names and path != "/":
            raise PathNotFoundError(path)
        return sorted("/" + name[len(self._root) :].rstrip("/") for name in names)

    def has_children(self, path: str) -> bool:
        """One page of at most one blob, not a listing of the whole folder."""
        with _errors(path):
            pages = self._container.list_blobs(self._prefix(path), results_per_page=1).by_page()
            return any(True for _ in next(pages, []))

    def files(self, path: str, skip: SkipFn = lambda folder: False) -> Iterator[FileInfo]:
        """One listing of every blob under the prefix, a page at a time."""
        prefix = self._prefix(path)
        base = path.rstrip("/")
        with _errors(path):
            for blob in self._container.list_blobs(prefix):
                child = f"{base}/{blob.name[len(prefix) :]}"
                if not skipped(child, path, skip):
                    yield FileInfo(child, blob.size, blob.last_modified, False)

    def move(self, src: str, dst: str) -> None:
        """Copy server-side, wait until the copy is done, then delete the source."""
        source, target = self._blob(src), self._blob(dst)
        with _errors(src):
            if src == dst:
                source.get_blob_properties()
                return
            # Same account: the request's own credentials authorise the source. (A SAS here
            # would also make azurite read the whole source into one string, failing >512 MiB.)
            url = source.url
            try:
                status = target.start_copy_from_url(url)["copy_status"]
            except HttpResponseError as exc:
                if exc.status_code == 404 or exc.error_code == "CannotVerifyCopySource":
                    raise PathNotFoundError(src) from exc
                raise
            self._wait_for_copy(target, status)
            source.delete_blob()

    def delete(self, path: str) -> None:
        """Remove the blob at ``path`` and every blob below it, which Go leaves behind when
        both exist."""
        with _errors(path):
            names = [blob.name for blob in self._container.list_blobs(self._prefix(path))]
            found = bool(names)
            with suppress(ResourceNotFoundError):
                self._blob(path).delete_blob()
                found = True
            for name in names:
                with suppress(ResourceNotFoundError):
                    self._container.delete_blob(name)
        if not found:
            raise PathNotFoundError(path)

    def redirect_url(self, path: str, method: str = "GET") -> str | None:
        """A read-only SAS URL, when the driver holds the account key to sign it."""
        if method not in ("GET", "HEAD"):
            return None
        return self._signed_url(self._blob(path), SAS_EXPIRY)

    def verify(self) -> None:
        """Fail at start-up, in one line, rather than on the first request."""
        container = self._container.container_name
        try:
            self._container.get_container_properties()
        except ResourceNotFoundError as exc:
            raise StorageDriverError(f"container {container!r} does not exist", "azure") from exc
        except AzureError as exc:
            refused = isinstance(exc, ClientAuthenticationError) or (
                isinstance(exc, HttpResponseError) and exc.status_code == 403
            )
            reason = (exc.message or type(exc).__name__).splitlines()[0]
            what = "credentials refused for" if refused else "cannot reach"
            message = f"{what} container {container!r}: {reason}"
            raise StorageDriverError(message, "azure") from exc

    def _blob(self, path: str) -> BlobClient:
        return self._container.get_blob_client(self._root + path[1:])

    def _prefix(self, path: str) -> str:
        return self._root + path[1:] + ("" if path == "/" else "/")

    def _signed_url(self, blob: BlobClient, expiry: timedelta) -> str | None:
        if not self._accountkey:
            return None
        now = datetime.now(UTC)
        sas = generate_blob_sas(
            self._accountname,
            blob.container_name,
            blob.blob_name,
            account_key=self._accountkey,
            permission=BlobSasPermissions(read=True),
            start=now - timedelta(minutes=5),
            expiry=now + expiry,
        )
        return f"{blob.url}?{sas}"

    def _wait_for_copy(self, target: BlobClient, status: str) -> None:
        deadline = time.monotonic() + COPY_TIMEOUT.total_seconds()
        delay = max(self._retry_delay, 0.01)
        while status == "pending":
            if time.monotonic() > deadline:
                copy = target.get_blob_properties().copy
                target.abort_copy(copy.id)
                raise StorageDriverError(f"copy to {target.blob_name} did not finish in time")
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
            status = target.get_blob_properties().copy.status
        if status != "success":
            raise StorageDriverError(f"copy to {target.blob_name} ended {status}")

    def _convert_to_append_blob(self, blob: BlobClient) -> int:
        """Turn a block blob (small, from :meth:`put_content`) into an append blob with the
        same content, so it can be appended to; returns its size. Not atomic, as in Go's
        opposite conversion in ``PutContent``."""
        data = blob.download_blob().readall()
        blob.delete_blob()
        blob.create_append_blob()
        for start in range(0, len(data), BLOCK_SIZE):
            blob.append_block(data[start : start + BLOCK_SIZE], appendpos_condition=start)
        return len(data)


class _Backoff(ExponentialRetry):
    """Go's policy: ``retry_delay`` doubling per retry, with jitter. Azure's own exponential
    policy adds whole seconds (``initial + base ** count``), far more than ``100ms``."""

    def __init__(self, delay: float, retries: int) -> None:
        # Azure also caps each kind of failure at 3 retries unless told otherwise.
        super().__init__(
            initial_backoff=0,
            retry_total=retries,
            retry_connect=retries,
            retry_read=retries,
            retry_status=retries,
            random_jitter_range=0,
        )
        self._delay = max(delay, 0.001)

    def get_backoff_time(self, settings: dict[str, Any]) -> float:
        return self._delay * 2 ** settings["count"] * random.uniform(0.5, 1.5)


class _Writer(FileWriter):
    """Appends in blocks of up to 4 MiB, each conditional on the blob's expected length."""

    def __init__(self, path: str, blob: BlobClient, size: int) -> None:
        super().__init__(size)
        self._path = path
        self._blob = blob
        self._stored = self._size
        self._buffer = bytearray()

    def _write(self, data: bytes) -> int:
        view = memoryview(data).cast("B")
        n = len(view)
        while view:
            if not self._buffer and len(view) >= BLOCK_SIZE:
                self._append(view[:BLOCK_SIZE])
                view = view[BLOCK_SIZE:]
                continue
            room = BLOCK_SIZE - len(self._buffer)
            self._buffer += view[:room]
            view = view[room:]
            if len(self._buffer) == BLOCK_SIZE:
                self._flush()
        return n

    def _close(self) -> None:
        self._flush()

    def _commit(self) -> None:
        self._flush()

    def _cancel(self) -> None:
        self._buffer = bytearray()
        with _errors(self._path), suppress(ResourceNotFoundError):
            self._blob.delete_blob()

    def _flush(self) -> None:
        if self._buffer:
            self._append(memoryview(self._buffer))
            self._buffer = bytearray()

    def _append(self, block: memoryview) -> None:
        """Append at the expected position; a retry whose first try landed is accepted."""
        expected = self._stored + len(block)
        with _errors(self._path):
            try:
                self._blob.append_block(bytes(block), appendpos_condition=self._stored)
            except HttpResponseError as exc:
                if exc.error_code != "AppendPositionConditionNotMet":
                    raise
                size = self._blob.get_blob_properties().size
                if size != expected:
                    message = f"{self._path} is {size} bytes, expected {expected}: written twice?"
                    raise StorageDriverError(message) from exc
        self._stored = expected


class _Reader(io.RawIOBase):
    """Streams a download one chunk (at most 4 MiB) at a time."""

    def __init__(self, path: str, chunks: Iterator[bytes]) -> None:
        self._path = path
        self._chunks = chunks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._pending:
            with _errors(self._path):
                self._pending = memoryview(next(self._chunks, b""))
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def readall(self) -> bytes:
        with _errors(self._path):
            rest = b"".join(self._chunks)
        data, self._pending = bytes(self._pending) + rest, memoryview(b"")
        return data


@contextmanager
def _errors(path: str) -> Iterator[None]:
    """Map Azure's errors onto the driver contract's."""
    try:
        yield
    except ResourceNotFoundError as exc:
        raise PathNotFoundError(path) from exc
    except AzureError as exc:
        raise StorageDriverError(f"{path}: {exc.message}") from exc


def _string(parameters: Mapping[str, Any], name: str) -> str:
    value = parameters.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidParameterError(name, f"not a string: {value!r}")
    return value


def _duration(name: str, value: Any) -> float:
    """Seconds from a Go duration (``"100ms"``, ``"1m30s"``) or a plain number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    nanoseconds = duration.parse(str(value).strip())
    if nanoseconds is not None and nanoseconds >= 0:
        return nanoseconds / 1e9
    raise InvalidParameterError(name, f"not a duration like '100ms': {value!r}")


def _credential(credentials: Any, accountname: str, accountkey: str) -> Any:
    """Resolve ``credentials.type`` as Go does; without a type, an account key means
    shared_key and its absence means default_credentials."""
    if credentials is None:
        credentials = {}
    if not isinstance(credentials, Mapping):
        raise InvalidParameterError("credentials", "not a mapping")
    kind = credentials.get("type") or ("shared_key" if accountkey else "default_credentials")
    if kind not in CREDENTIAL_TYPES:
        raise InvalidParameterError(
            "credentials.type", f"{kind!r} is not one of {', '.join(CREDENTIAL_TYPES)}"
        )
    if kind == "shared_key":
        if not accountkey:
            raise InvalidParameterError("accountkey", "required for shared_key credentials")
        return {"account_name": accountname, "account_key": accountkey}
    try:
        from azure import identity
    except ImportError as exc:
        message = f"{kind} needs the azure-identity package installed"
        raise InvalidParameterError("credentials.type", message) from exc
    if kind == "default_credentials":
        return identity.DefaultAzureCredential()
    fields = {name: credentials.get(name) for name in ("clientid", "tenantid", "secret")}
    for name, value in fields.items():
        if not value or not isinstance(value, str):
            raise InvalidParameterError(
                f"credentials.{name}", "required (a string) for client_secret credentials"
            )
    return identity.ClientSecretCredential(fields["tenantid"], fields["clientid"], fields["secret"])
