"""A driver for Amazon S3 and S3-compatible stores, laid out and configured like Go's ``s3aws``.

Objects are named by their path below ``rootdirectory`` (Go's ``s3Path``: the root without
its trailing ``/``, the path appended, leading ``/`` dropped); directories are only name
prefixes.

Writers keep their file as an S3 multipart upload at the file's key, exactly as the Go driver
does, so a Go replica resumes an upload this driver started and the reverse:

* a new writer starts a multipart upload; ``close`` sends what it buffered as one more part,
  so everything written is in S3 and nothing in the process;
* a resumed writer (``append``) takes the first upload S3 lists for the exact key and its
  parts; the file's size is the sum of the parts. ``stat`` sees the same, unless an object
  at the key is newer than the upload (which a multipart copy that died left there); an
  upload such a copy left at a blob's key, alone, is replaced by the next push of that blob,
  whose size it lacks (see :mod:`distribution.storage.uploads`);
* S3 refuses parts under 5 MiB anywhere but last. When the last part is smaller and more
  data comes, the upload is completed (the object holds everything so far), a new upload is
  started, and the object becomes its first part: copied server-side when it is 5 MiB or
  more, else read back into the buffer. That is Go's own recovery, except that the object
  is deleted once its bytes are in the new upload (Go leaves it beside the upload);
* ``commit`` completes the upload (an empty file gets one empty part, as in Go 3).

A writer holds at most ``chunksize`` + 5 MiB in memory: it sends a part of ``chunksize``
only once 5 MiB more are waiting, so its last part is never under 5 MiB when it sent any,
and the next writer rarely needs the recovery above. Beyond Go, opening a writer without
``append`` (and ``move``, at its target) first aborts stray uploads at the key, ``delete``
aborts the uploads below the path, a file that is a plain object (``put_content``) can be
appended to, and a dropped download is resumed where it broke.

``move`` copies server-side (one CopyObject up to ``multipartcopythresholdsize``, else a
multipart copy in ``multipartcopychunksize`` ranges, ``multipartcopymaxconcurrency`` at a
time), then deletes the source, as Go does. Redirect URLs are presigned GETs (or HEADs), valid
for 20 minutes.

Calls are retried by botocore's standard mode (throttling such as 503 SlowDown, 5xx, timeouts
and dropped connections, with exponential backoff and jitter); ``max_retries`` (our extension)
bounds the retries. Start-up fails when the bucket is missing, the credentials are refused or
the endpoint cannot be reached. botocore (boto3's core, all this needs) is imported only when
this driver is configured.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import logging
import re
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO

import botocore.exceptions
import botocore.session
import botocore.utils
import urllib3.exceptions
from botocore.config import Config

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

MiB = 1 << 20
#: S3's smallest part, for every part but the last.
MIN_CHUNK_SIZE = 5 * MiB
#: S3's largest part, and the largest single copy.
MAX_CHUNK_SIZE = 5 << 30
DEFAULT_CHUNK_SIZE = 2 * MIN_CHUNK_SIZE
DEFAULT_MULTIPART_COPY_CHUNK_SIZE = 32 * MiB
DEFAULT_MULTIPART_COPY_MAX_CONCURRENCY = 100
DEFAULT_MULTIPART_COPY_THRESHOLD_SIZE = 32 * MiB
#: aws-sdk-go's default retryer makes 3 retries.
DEFAULT_MAX_RETRIES = 3
#: As Go's driver: long enough to start a pull, short enough to be worthless when leaked.
PRESIGN_EXPIRY = 20 * 60
#: Go's storage classes (3.x list); ``NONE`` sends none, for stores that reject the header.
STORAGE_CLASSES = (
    "NONE",
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "OUTPOSTS",
    "GLACIER_IR",
    "EXPRESS_ONEZONE",
)
OBJECT_ACLS = (
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
)
#: Go 3's ``loglevel`` values; every ``debug*`` level logs botocore's requests here.
LOG_LEVELS = (
    "off",
    "debug",
    "debugwithsigning",
    "debugwithhttpbody",
    "debugwithrequestretries",
    "debugwithrequesterrors",
    "debugwitheventstreambody",
)
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 60
#: Threads of a multipart copy at most, whatever ``multipartcopymaxconcurrency`` allows.
COPY_THREADS = 16
#: Error codes that mean the credentials, not the request, were refused.
_REFUSED = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "InvalidClientTokenId",
    "AuthorizationHeaderMalformed",
    "403",
}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Parameters:
    """The ``storage.s3`` section, checked, with Go's defaults."""

    bucket: str
    region: str
    regionendpoint: str = ""
    forcepathstyle: bool | None = None
    accesskey: str = ""
    secretkey: str = ""
    sessiontoken: str = ""
    encrypt: bool = False
    keyid: str = ""
    secure: bool = True
    skipverify: bool = False
    v4auth: bool = True
    chunksize: int = DEFAULT_CHUNK_SIZE
    multipartcopychunksize: int = DEFAULT_MULTIPART_COPY_CHUNK_SIZE
    multipartcopymaxconcurrency: int = DEFAULT_MULTIPART_COPY_MAX_CONCURRENCY
    multipartcopythresholdsize: int = DEFAULT_MULTIPART_COPY_THRESHOLD_SIZE
    rootdirectory: str = ""
    storageclass: str = "STANDARD"
    objectacl: str = "private"
    useragent: str = ""
    usedualstack: bool = False
    accelerate: bool = False
    usefipsendpoint: bool = False
    loglevel: str = "off"
    redirectendpoint: str = ""
    max_retries: int = DEFAULT_MAX_RETRIES

    @property
    def path_style(self) -> bool:
        """Go 2.8 goes path-style whenever ``regionendpoint`` is set (S3-compatible stores
        rarely serve bucket host names); Go 3 asks for ``forcepathstyle``. Unset, we do as
        2.8; an explicit ``forcepathstyle: false`` gets Go 3's virtual-hosted style."""
        if self.forcepathstyle is None:
            return bool(self.regionendpoint)
        return self.forcepathstyle

    @property
    def addressing_style(self) -> str:
        """botocore's name for it. Off path style, the bucket is the host name, as Go's SDK
        makes it, when it can be one (botocore's check: a DNS label, no dot, which would
        break TLS's one-label wildcard); botocore's ``auto`` kept path style at a
        ``regionendpoint`` and signed redirects for the global host, which buckets in newer
        regions do not answer."""
        if self.path_style or not botocore.utils.check_dns_name(self.bucket):
            return "path"
        return "virtual"


def from_parameters(parameters: Mapping[str, Any]) -> S3Driver:
    """Build the driver from the ``storage.s3`` config section."""
    return S3Driver(parse_parameters(parameters))


def parse_parameters(parameters: Mapping[str, Any]) -> Parameters:
    """Check every parameter as Go's ``FromParameters`` does; errors name the parameter."""
    regionendpoint = _string(parameters, "regionendpoint")
    region = _string(parameters, "region")
    if not regionendpoint:
        if not region:
            raise InvalidParameterError("region", "no region given (or give regionendpoint)")
        if region not in _known_regions():
            raise InvalidParameterError("region", f"invalid region provided: {region}")
    bucket = _string(parameters, "bucket")
    if not bucket:
        raise InvalidParameterError("bucket", "no bucket name given")
    secure = _bool(parameters, "secure", True)
    if regionendpoint:
        regionendpoint = _endpoint("regionendpoint", regionendpoint, secure)
    redirectendpoint = _string(parameters, "redirectendpoint")
    if redirectendpoint:
        redirectendpoint = _redirect_endpoint(redirectendpoint)
    accesskey, secretkey = _string(parameters, "accesskey"), _string(parameters, "secretkey")
    if bool(accesskey) != bool(secretkey):
        missing = "secretkey" if accesskey else "accesskey"
        raise InvalidParameterError(missing, "accesskey and secretkey go together")
    v4auth = _bool(parameters, "v4auth", True)
    if not v4auth and (not regionendpoint or "s3.amazonaws.com" in regionendpoint):
        raise InvalidParameterError(
            "v4auth", "on Amazon S3 this storage driver can only be used with v4 authentication"
        )
    values = Parameters(
        bucket=bucket,
        region=region or "us-east-1",
        regionendpoint=regionendpoint,
        forcepathstyle=_bool(parameters, "forcepathstyle", None),
        accesskey=accesskey,
        secretkey=secretkey,
        sessiontoken=_string(parameters, "sessiontoken"),
        encrypt=_bool(parameters, "encrypt", False),
        keyid=_string(parameters, "keyid"),
        secure=secure,
        skipverify=_bool(parameters, "skipverify", False),
        v4auth=v4auth,
        chunksize=_integer(
            parameters, "chunksize", DEFAULT_CHUNK_SIZE, MIN_CHUNK_SIZE, MAX_CHUNK_SIZE
        ),
        multipartcopychunksize=_integer(
            parameters,
            "multipartcopychunksize",
            DEFAULT_MULTIPART_COPY_CHUNK_SIZE,
            MIN_CHUNK_SIZE,
            MAX_CHUNK_SIZE,
        ),
        multipartcopymaxconcurrency=_integer(
            parameters,
            "multipartcopymaxconcurrency",
            DEFAULT_MULTIPART_COPY_MAX_CONCURRENCY,
            1,
            2**63 - 1,
        ),
        multipartcopythresholdsize=_integer(
            parameters,
            "multipartcopythresholdsize",
            DEFAULT_MULTIPART_COPY_THRESHOLD_SIZE,
            0,
            MAX_CHUNK_SIZE,
        ),
        rootdirectory=_string(parameters, "rootdirectory"),
        storageclass=_choice(parameters, "storageclass", "STANDARD", STORAGE_CLASSES, str.upper),
        objectacl=_choice(parameters, "objectacl", "private", OBJECT_ACLS, str),
        useragent=_string(parameters, "useragent"),
        usedualstack=_bool(parameters, "usedualstack", False),
        accelerate=_bool(parameters, "accelerate", False),
        usefipsendpoint=_bool(parameters, "usefipsendpoint", False),
        loglevel=_log_level(parameters.get("loglevel")),
        redirectendpoint=redirectendpoint,
        max_retries=_integer(parameters, "max_retries", DEFAULT_MAX_RETRIES, 0, 100),
    )
    return values


@dataclass(frozen=True)
class _Part:
    number: int
    etag: str
    size: int


@dataclass(frozen=True)
class _Upload:
    """A multipart upload in progress at a key, with its parts in order."""

    upload_id: str
    parts: list[_Part]
    initiated: datetime

    @property
    def size(self) -> int:
        return sum(part.size for part in self.parts)


class S3Driver(StorageDriver):
    """Storage in one bucket; every key below ``rootdirectory``."""

    def __init__(self, parameters: Parameters) -> None:
        self.parameters = parameters
        self.bucket = parameters.bucket
        self.chunksize = parameters.chunksize
        self._base = parameters.rootdirectory.rstrip("/").lstrip("/")
        if parameters.loglevel != "off":
            logging.getLogger("botocore").setLevel(logging.DEBUG)
        try:
            self._client = _client(
                parameters, parameters.regionendpoint or None, parameters.addressing_style
            )
            self._presigner = self._client
            if parameters.redirectendpoint:
                # The bucket in the path, as its URLs have always had it (botocore's ``auto``
                # at a custom endpoint): Go keeps the addressing and swaps the host only.
                self._presigner = _client(parameters, parameters.redirectendpoint, "path")
        except (ValueError, botocore.exceptions.BotoCoreError) as exc:
            raise InvalidParameterError("regionendpoint", str(exc)) from exc
        credentials = None if parameters.accesskey else _session().get_credentials()
        self._credentials_method = getattr(credentials, "method", None)
        self._object_headers = _object_headers(parameters)

    @property
    def name(self) -> str:
        return "s3aws"

    def bucket_key(self, path: str) -> str:
        """The object key of ``path``, as Go's ``S3BucketKey`` (CloudFront signs it)."""
        return (self.parameters.rootdirectory.rstrip("/") + path).lstrip("/")

    def get_content(self, path: str) -> bytes:
        with _errors(path):
            response = self._client.get_object(Bucket=self.bucket, Key=self.bucket_key(path))
            with response["Body"] as body:
                return body.read()

    def put_content(self, path: str, data: bytes, *, durable: bool = True) -> None:
        with _errors(path):
            self._client.put_object(
                Bucket=self.bucket,
                Key=self.bucket_key(path),
                Body=bytes(data),
                **self._object_headers,
            )

    def reader(self, path: str, offset: int = 0) -> BinaryIO:
        key = self.bucket_key(path)
        with _errors(path):
            head = self._head(key)
            if head is None:
                raise PathNotFoundError(path)
            size = head["ContentLength"]
            if offset > size:
                raise InvalidOffsetError(path, offset)
            if offset == size:
                return io.BytesIO()
            return _Reader(self, path, key, head["ETag"], offset, size)  # type: ignore[return-value]

    def writer(self, path: str, append: bool = False) -> FileWriter:
        key = self.bucket_key(path)
        with _errors(path):
            if not append:
                self._abort_all(key)
                return _Writer(self, path, key, self._create_upload(key), [], 0)
            upload = self._find_upload(key)
            if upload is not None:
                return _Writer(self, path, key, upload.upload_id, upload.parts, upload.size)
            head = self._head(key)
            if head is None:
                raise PathNotFoundError(path)
            return _Writer(self, path, key, None, [], head["ContentLength"])

    def stat(self, path: str) -> FileInfo:
        """The file at ``path``, as a resumed writer takes it, or the folder below it.

        An upload at the key is the file (one still being written) unless an object there is
        newer: Go's recovery completes an upload and starts the next one (the object it leaves
        beside it is stale), while a multipart copy that died started before the object another
        move completed there (the upload is the leftover).
        """
        with _errors(path):
            if path != "/":
                key = self.bucket_key(path)
                upload = self._find_upload(key)
                head = self._head(key)
                if upload is not None and (
                    head is None or upload.initiated >= head["LastModified"]
                ):
                    return FileInfo(path, upload.size, upload.initiated, is_dir=False)
                if head is not None:
                    return FileInfo(path, head["ContentLength"], head["LastModified"], False)
            listing = self._client.list_objects_v2(
                Bucket=self.bucket, Prefix=self._dir_prefix(path), MaxKeys=1
            )
        contents = listing.get("Contents") or []
        if contents:
            return FileInfo(path, 0, contents[0]["LastModified"], is_dir=True)
        if path == "/":
            return FileInfo(path, 0, datetime.now(UTC), is_dir=True)
        raise PathNotFoundError(path)

    def list(self, path: str) -> list[str]:
        prefix = self._dir_prefix(path)
        names: set[str] = set()
        with _errors(path):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix, Delimiter="/"
            )
            for page in pages:
                # A folder placeholder (a console's "create folder") is named like the prefix.
                names.update(o["Key"] for o in page.get("Contents") or [] if o["Key"] != prefix)
                names.update(p["Prefix"].rstrip("/") for p in page.get("CommonPrefixes") or [])
        if not names and path != "/":
            raise PathNotFoundError(path)
        base = path.rstrip("/")
        return sorted(f"{base}/{name[len(prefix) :]}" for name in names)

    def has_children(self, path: str) -> bool:
        """One request for two keys at most (a folder placeholder sorts first), not a listing
        of the whole folder."""
        prefix = self._dir_prefix(path)
        with _errors(path):
            listing = self._client.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=2)
        return any(found["Key"] != prefix for found in listing.get("Contents") or [])

    def files(self, path: str, skip: SkipFn = lambda folder: False) -> Iterator[FileInfo]:
        """One listing of every object under the prefix, a thousand a page (not a listing and
        a ``HEAD`` per folder and file); multipart uploads still being written are left out."""
        prefix = self._dir_prefix(path)
        base = path.rstrip("/")
        with _errors(path):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                for found in page.get("Contents") or []:
                    if found["Key"].endswith("/"):
                        continue  # a folder placeholder
                    child = f"{base}/{found['Key'][len(prefix) :]}"
                    if not skipped(child, path, skip):
                        yield FileInfo(child, found["Size"], found["LastModified"], False)

    def move(self, src: str, dst: str) -> None:
        """Copy server-side, then delete the source. Uploads at the target (a multipart copy
        that died there) are aborted first, as a new writer aborts them: left alone they cost
        storage and would be resumed by a writer at that key."""
        source, target = self.bucket_key(src), self.bucket_key(dst)
        with _errors(src):
            head = self._head(source)
            if head is None:
                raise PathNotFoundError(src)
            if source == target:
                return
            self._abort_all(target)
            size = head["ContentLength"]
            if size <= self.parameters.multipartcopythresholdsize:
                self._client.copy_object(
                    Bucket=self.bucket,
                    Key=target,
                    CopySource={"Bucket": self.bucket, "Key": source},
                    **self._object_headers,
                )
            else:
                self._multipart_copy(source, target, size)
            self._client.delete_object(Bucket=self.bucket, Key=source)

    def delete(self, path: str) -> None:
        """Remove the object at ``path`` and every object below it, a listed page (up to a
        thousand keys) at a time as Go does, not all keys held first; then abort the
        multipart uploads there (Go leaves those for a lifecycle rule to expire)."""
        key = self.bucket_key(path)
        with _errors(path):
            found = self._head(key) is not None
            if found:
                self._delete_keys(path, [key])
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=key + "/"
            )
            for page in pages:
                keys = [o["Key"] for o in page.get("Contents") or []]
                if keys:
                    self._delete_keys(path, keys)
                    found = True
            uploads = [
                (upload["Key"], upload["UploadId"])
                for upload in self._list_uploads(key)
                if upload["Key"] == key or upload["Key"].startswith(key + "/")
            ]
            if not found and not uploads:
                raise PathNotFoundError(path)
            for upload_key, upload_id in uploads:
                self._abort(upload_key, upload_id)

    def redirect_url(self, path: str, method: str = "GET") -> str | None:
        """A presigned URL (through ``redirectendpoint`` when set), valid for 20 minutes."""
        operation = {"GET": "get_object", "HEAD": "head_object"}.get(method)
        if operation is None:
            return None
        with _errors(path):
            return self._presigner.generate_presigned_url(
                operation,
                Params={"Bucket": self.bucket, "Key": self.bucket_key(path)},
                ExpiresIn=PRESIGN_EXPIRY,
            )

    def verify(self) -> None:
        """Fail at start-up, in one line naming the parameter, rather than on a request.
        Listing needs only the permission the registry needs anyway."""
        parameters = self.parameters
        try:
            self._client.list_objects_v2(Bucket=self.bucket, Prefix=self._base, MaxKeys=1)
        except botocore.exceptions.ClientError as exc:
            code, message = _code(exc), _message(exc)
            if code in ("NoSuchBucket", "404"):
                raise InvalidParameterError(
                    "bucket", f"bucket {self.bucket!r} does not exist"
                ) from exc
            if code in _REFUSED:
                reason = f"credentials refused for bucket {self.bucket!r}: {code}: {message}"
                if parameters.accesskey:
                    raise InvalidParameterError("accesskey", reason) from exc
                source = self._credentials_method or "none found"
                raise StorageDriverError(f"{reason} (credentials: {source})") from exc
            raise StorageDriverError(
                f"bucket {self.bucket!r}: {code}: {message}", self.name
            ) from exc
        except botocore.exceptions.NoCredentialsError as exc:
            raise InvalidParameterError(
                "accesskey",
                "none given, and none in the environment, shared config or instance metadata",
            ) from exc
        except botocore.exceptions.BotoCoreError as exc:
            where = parameters.regionendpoint or self._client.meta.endpoint_url
            reason = f"cannot reach {where}: {exc}"
            if parameters.regionendpoint:
                raise InvalidParameterError("regionendpoint", reason) from exc
            raise StorageDriverError(reason, self.name) from exc

    def _delete_keys(self, path: str, keys: list[str]) -> None:
        """One DeleteObjects (up to 1000 keys); an object it could not delete is an error."""
        answer = self._client.delete_objects(
            Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
        )
        failed = answer.get("Errors") or []
        if failed:
            first = failed[0]
            raise StorageDriverError(
                f"{path}: {len(failed)} objects not deleted, first {first.get('Key')}: "
                f"{first.get('Code')} {first.get('Message')}"
            )

    def _dir_prefix(self, path: str) -> str:
        base = self.bucket_key("/")
        return base if path == "/" else self.bucket_key(path) + "/"

    def _head(self, key: str) -> dict[str, Any] | None:
        """The object's metadata, or None when there is no object at ``key``."""
        try:
            return self._client.head_object(Bucket=self.bucket, Key=key)
        except botocore.exceptions.ClientError as exc:
            if _code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def _list_uploads(self, key: str) -> Iterator[dict[str, Any]]:
        """The multipart uploads whose key starts with ``key``, in S3's order (by key, then
        by when they started)."""
        pages = self._client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=key
        )
        for page in pages:
            yield from page.get("Uploads") or []

    def _abort_all(self, key: str) -> None:
        """Abort every upload at exactly ``key``."""
        for upload in list(self._list_uploads(key)):
            if upload["Key"] == key:
                self._abort(key, upload["UploadId"])

    def _find_upload(self, key: str) -> _Upload | None:
        """The upload a writer resumes at ``key``: the first listed, as Go takes it."""
        for upload in self._list_uploads(key):
            if upload["Key"] == key:
                return _Upload(
                    upload["UploadId"], self._parts(key, upload["UploadId"]), upload["Initiated"]
                )
        return None

    def _parts(self, key: str, upload_id: str) -> list[_Part]:
        pages = self._client.get_paginator("list_parts").paginate(
            Bucket=self.bucket, Key=key, UploadId=upload_id
        )
        parts = [
            _Part(part["PartNumber"], part["ETag"], part["Size"])
            for page in pages
            for part in page.get("Parts") or []
        ]
        parts.sort(key=lambda part: part.number)
        return parts

    def _create_upload(self, key: str) -> str:
        answer = self._client.create_multipart_upload(
            Bucket=self.bucket, Key=key, **self._object_headers
        )
        return answer["UploadId"]

    def _abort(self, key: str, upload_id: str) -> None:
        with suppress(botocore.exceptions.ClientError):
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def _upload_part(self, key: str, upload_id: str, number: int, data: bytearray) -> _Part:
        answer = self._client.upload_part(
            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
        )
        return _Part(number, answer["ETag"], len(data))

    def _copy_part(
        self, source: str, key: str, upload_id: str, number: int, start: int, stop: int
    ) -> _Part:
        answer = self._client.upload_part_copy(
            Bucket=self.bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            CopySource={"Bucket": self.bucket, "Key": source},
            CopySourceRange=f"bytes={start}-{stop - 1}",
        )
        return _Part(number, answer["CopyPartResult"]["ETag"], stop - start)

    def _complete(self, key: str, upload_id: str, parts: list[_Part]) -> None:
        self._client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={
                "Parts": [{"ETag": part.etag, "PartNumber": part.number} for part in parts]
            },
        )

    def _multipart_copy(self, source: str, target: str, size: int) -> None:
        """Copy ``size`` bytes in ``multipartcopychunksize`` ranges, several at a time."""
        chunk = self.parameters.multipartcopychunksize
        ranges = [(start, min(start + chunk, size)) for start in range(0, size, chunk)]
        upload_id = self._create_upload(target)
        threads = min(self.parameters.multipartcopymaxconcurrency, len(ranges), COPY_THREADS)
        try:
            with ThreadPoolExecutor(threads, thread_name_prefix="s3-copy") as pool:
                jobs = [
                    pool.submit(self._copy_part, source, target, upload_id, i + 1, start, stop)
                    for i, (start, stop) in enumerate(ranges)
                ]
                parts = [job.result() for job in jobs]
            self._complete(target, upload_id, parts)
        except BaseException:
            self._abort(target, upload_id)
            raise


class _Writer(FileWriter):
    """Buffers up to ``chunksize`` + 5 MiB and sends ``chunksize`` parts; see the module.

    The bytes wait in two arrays: the next part, filled up to ``chunksize``, and the tail after
    it, filled up to 5 MiB. Once both are full the part is sent as it is, and the tail becomes
    the next part: no array is copied or cut, so memory stays at those two (a single buffer
    cut at ``chunksize`` kept its whole allocation and copied the rest: 22 MiB per writer
    instead of 15 at the default size).
    """

    def __init__(
        self,
        driver: S3Driver,
        path: str,
        key: str,
        upload_id: str | None,
        parts: list[_Part],
        size: int,
    ) -> None:
        super().__init__(size)
        self._driver = driver
        self._path = path
        self._key = key
        #: None while the file is a plain object not yet reopened as an upload, or read back
        #: into the buffer and not yet sent as the first part of a new one.
        self._upload_id = upload_id
        self._parts = list(parts)
        self._buffer = bytearray()
        self._tail = bytearray()
        #: The object at the key was read back into the buffer: it goes once that is sent.
        self._stale_object = False
        self._restart = upload_id is None or bool(parts and parts[-1].size < MIN_CHUNK_SIZE)

    def _write(self, data: bytes) -> int:
        """Buffer ``data``, sending each full part. A write that fails keeps what is in the
        parts sent before the failure, and nothing more of ``data``: the rest is cut from
        the buffers and the size counts what was kept, so the size, what ``close`` sends and
        the stored parts always agree (a retry writes from ``size`` on)."""
        n = len(data)
        with _errors(self._path):
            if self._restart:
                self._reopen()
            view = memoryview(data)
            chunk = self._driver.chunksize
            kept = (len(self._buffer), len(self._tail), 0)
            try:
                while view:
                    if len(self._buffer) < chunk:
                        room = chunk - len(self._buffer)
                        self._buffer += view[:room]
                    else:
                        room = MIN_CHUNK_SIZE - len(self._tail)
                        self._tail += view[:room]
                    view = view[room:]
                    if len(self._tail) == MIN_CHUNK_SIZE:
                        self._send()
                        kept = (len(self._buffer), len(self._tail), n - len(view))
            except BaseException:
                buffered, tail, sent = kept
                del self._buffer[buffered:]
                del self._tail[tail:]
                self._size += sent
                raise
        return n

    def _close(self) -> None:
        if self._committed or not (self._buffer or self._tail):
            return
        with _errors(self._path):
            self._send_all()

    def _commit(self) -> None:
        with _errors(self._path):
            if self._upload_id is None and not (self._buffer or self._tail):
                return  # a plain object, nothing written: already complete
            if self._buffer or self._tail or not self._parts:
                self._send_all()
            try:
                self._driver._complete(self._key, self._upload_id, self._parts)
            except botocore.exceptions.ClientError as exc:
                # A retry of a completion that landed finds the upload gone and the object made.
                head = self._driver._head(self._key) if _code(exc) == "NoSuchUpload" else None
                if head is None or head["ContentLength"] != self._size:
                    raise

    def _cancel(self) -> None:
        self._buffer, self._tail = bytearray(), bytearray()
        with _errors(self._path):
            if self._upload_id is not None:
                self._driver._abort(self._key, self._upload_id)
            self._driver._client.delete_object(Bucket=self._driver.bucket, Key=self._key)

    def _send(self) -> None:
        """Upload the full part; once it is stored, its tail becomes the next one.

        An upload started here is aborted if its first part fails: an upload without the
        object's bytes beside that object would be what a resumed writer takes for the file.
        """
        driver = self._driver
        started = self._upload_id is None
        if self._upload_id is None:
            self._upload_id = driver._create_upload(self._key)
        number = self._parts[-1].number + 1 if self._parts else 1
        try:
            part = driver._upload_part(self._key, self._upload_id, number, self._buffer)
        except BaseException:
            if started:
                driver._abort(self._key, self._upload_id)
                self._upload_id = None
            raise
        # Only now: a part that failed keeps its bytes in the buffer.
        self._parts.append(part)
        self._buffer, self._tail = self._tail, bytearray()
        if self._stale_object:
            driver._client.delete_object(Bucket=driver.bucket, Key=self._key)
            self._stale_object = False

    def _send_all(self) -> None:
        """Upload every buffered byte as one last part (under ``chunksize`` + 5 MiB)."""
        self._buffer += self._tail
        self._tail = bytearray()
        self._send()

    def _reopen(self) -> None:
        """Go's recovery, on the first write (nothing buffered yet): make what is stored one
        object, then the first part of a new upload: copied when it may be a part, else read
        back into the buffer and sent with the next part.

        Unlike Go, the object does not stay beside the new upload (a ``stat`` would show its
        old size, a ``get_content`` its old bytes): it is deleted once its bytes are in a
        part. Until then it is the file, with no upload at the key to hide it, so a failure
        at any step leaves what a retry or a resumed writer starts from again.
        """
        driver = self._driver
        if self._upload_id is not None:
            driver._complete(self._key, self._upload_id, self._parts)
            self._upload_id, self._parts = None, []
        size = self._size
        if size < MIN_CHUNK_SIZE:
            response = driver._client.get_object(Bucket=driver.bucket, Key=self._key)
            with response["Body"] as body:
                self._buffer[:0] = body.read()
            self._stale_object = True
        else:
            upload_id = driver._create_upload(self._key)
            try:
                # A copied part is at most 5 GiB: split larger objects into equal pieces.
                count = -(-size // MAX_CHUNK_SIZE)
                bounds = [size * i // count for i in range(count + 1)]
                parts = [
                    driver._copy_part(
                        self._key, self._key, upload_id, i + 1, bounds[i], bounds[i + 1]
                    )
                    for i in range(count)
                ]
            except BaseException:
                driver._abort(self._key, upload_id)
                raise
            self._upload_id, self._parts = upload_id, parts
            driver._client.delete_object(Bucket=driver.bucket, Key=self._key)
        self._restart = False


class _Reader(io.RawIOBase):
    """A GET from ``offset`` to the end; a download that breaks off is resumed from where it
    stopped (at most ``max_retries`` times), pinned to the same object by its ETag."""

    def __init__(
        self, driver: S3Driver, path: str, key: str, etag: str, offset: int, size: int
    ) -> None:
        self._driver = driver
        self._path = path
        self._key = key
        self._etag = etag
        self._position = offset
        self._size = size
        self._retries = driver.parameters.max_retries
        self._body: Any = None
        self._open()

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes as the HTTP client returns them (no copy into a buffer)."""
        if size is None or size < 0:
            return self.readall()
        return self._next(size)

    def readinto(self, buffer: Any) -> int:
        data = self._next(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _next(self, size: int) -> bytes:
        wanted = min(size, self._size - self._position)
        if wanted <= 0:
            return b""
        attempts = 0
        while True:
            try:
                data = self._body.read(wanted)
                if not data:
                    raise StorageDriverError(f"{self._path}: download ended early")
            except (
                StorageDriverError,
                botocore.exceptions.BotoCoreError,
                OSError,
                urllib3.exceptions.HTTPError,
            ) as exc:
                if attempts >= self._retries:
                    raise StorageDriverError(f"{self._path}: download failed: {exc}") from exc
                attempts += 1
                log.warning("s3: resuming download of %s at %d: %s", self._key, self._position, exc)
                self._open()
                continue
            self._position += len(data)
            return data

    def close(self) -> None:
        if self._body is not None:
            self._body.close()
        super().close()

    def _open(self) -> None:
        if self._body is not None:
            with suppress(Exception):
                self._body.close()
        with _errors(self._path):
            response = self._driver._client.get_object(
                Bucket=self._driver.bucket,
                Key=self._key,
                Range=f"bytes={self._position}-",
                IfMatch=self._etag,
            )
        self._body = response["Body"]


@contextmanager
def _errors(path: str) -> Iterator[None]:
    """Map botocore's errors onto the driver contract's."""
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        if _code(exc) in ("NoSuchKey", "404", "NotFound", "NoSuchUpload"):
            raise PathNotFoundError(path) from exc
        raise StorageDriverError(f"{path}: {_code(exc)}: {_message(exc)}") from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise StorageDriverError(f"{path}: {exc}") from exc


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _message(exc: botocore.exceptions.ClientError) -> str:
    error = exc.response.get("Error", {})
    return str(
        error.get("Message") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    )


def _session() -> botocore.session.Session:
    """One botocore session per process: it parses the S3 model once, so a driver (and each
    test's) costs milliseconds, not a quarter second."""
    global _shared_session
    with _session_lock:
        if _shared_session is None:
            _shared_session = botocore.session.get_session()
            parsers = _shared_session.get_component("response_parser_factory")
            parsers.set_parser_defaults(timestamp_parser=_timestamp)
        return _shared_session


_ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z")


def _timestamp(value: str) -> datetime:
    """The times in S3's XML (``2026-12-06T05:00:00.000Z``) read by the standard library:
    botocore's parser (dateutil) took half the CPU of a listing of an upload's parts, one
    time per part, once a PATCH. Other forms (HTTP dates in headers) go to botocore's."""
    if _ISO_TIME.fullmatch(value):
        return datetime.fromisoformat(value)
    return botocore.utils.parse_timestamp(value)


_shared_session: botocore.session.Session | None = None
_session_lock = threading.Lock()


def _client(parameters: Parameters, endpoint: str | None, addressing_style: str) -> Any:
    s3: dict[str, Any] = {"addressing_style": addressing_style}
    if parameters.accelerate:
        s3["use_accelerate_endpoint"] = True
    if parameters.usedualstack:
        s3["use_dualstack_endpoint"] = True
    config = Config(
        region_name=parameters.region,
        signature_version="s3v4" if parameters.v4auth else "s3",
        s3=s3,
        retries={"mode": "standard", "total_max_attempts": parameters.max_retries + 1},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        max_pool_connections=64,
        user_agent_extra=parameters.useragent or None,
        use_fips_endpoint=parameters.usefipsendpoint,
        # Go's SDK sends no CRC32 trailers; several S3-compatible stores reject them.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        tcp_keepalive=True,
    )
    session = _session()
    with _session_lock:  # creating clients from one session is not thread-safe
        client = session.create_client(
            "s3",
            endpoint_url=endpoint,
            use_ssl=parameters.secure,
            verify=False if parameters.skipverify else None,
            aws_access_key_id=parameters.accesskey or None,
            aws_secret_access_key=parameters.secretkey or None,
            aws_session_token=parameters.sessiontoken or None,
            config=config,
        )
    client.meta.events.register("before-sign.s3.DeleteObjects", _content_md5)
    return client


def _content_md5(request: Any, **_: Any) -> None:
    """DeleteObjects with a Content-MD5 header, as Go's SDK sends it, in place of the CRC32
    one botocore 1.36+ sends: stores that require Content-MD5 (older MinIO, some Ceph
    releases, Dell ECS, OVH) answer MissingContentMD5 without it."""
    for name in list(request.headers):
        lowered = name.lower()
        if lowered.startswith("x-amz-checksum-") or lowered == "x-amz-sdk-checksum-algorithm":
            del request.headers[name]
    digest = hashlib.md5(request.body or b"", usedforsecurity=False).digest()
    request.headers["Content-MD5"] = base64.b64encode(digest).decode("ascii")


def _object_headers(parameters: Parameters) -> dict[str, str]:
    """What Go sends with every object it creates: type, ACL, encryption, storage class."""
    headers = {"ContentType": "application/octet-stream", "ACL": parameters.objectacl}
    if parameters.encrypt:
        headers["ServerSideEncryption"] = "aws:kms" if parameters.keyid else "AES256"
    if parameters.keyid:
        headers["SSEKMSKeyId"] = parameters.keyid
    if parameters.storageclass != "NONE":
        headers["StorageClass"] = parameters.storageclass
    return headers


@functools.cache
def _known_regions() -> frozenset[str]:
    session = _session()
    return frozenset(
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("s3", partition_name=partition)
    )


def _endpoint(name: str, value: str, secure: bool) -> str:
    """A URL; a bare ``host:port`` gets the scheme ``secure`` asks for, as in Go's SDK."""
    if "://" not in value:
        value = ("https://" if secure else "http://") + value
    parsed = urllib.parse.urlsplit(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InvalidParameterError(name, f"not an http(s) URL: {value!r}")
    return value


def _redirect_endpoint(value: str) -> str:
    """Go 3's checks: a scheme and a host, no path, no query."""
    parsed = urllib.parse.urlsplit(value)
    if not parsed.scheme:
        raise InvalidParameterError("redirectendpoint", "no scheme specified")
    if not parsed.netloc:
        raise InvalidParameterError("redirectendpoint", "no host specified")
    if parsed.path not in ("", "/"):
        raise InvalidParameterError("redirectendpoint", f"cannot contain a path: {parsed.path}")
    if parsed.query:
        raise InvalidParameterError("redirectendpoint", "cannot contain query parameters")
    return f"{parsed.scheme}://{parsed.netloc}"


def _string(parameters: Mapping[str, Any], name: str) -> str:
    """Go's ``fmt.Sprint`` of the value: any scalar as text, nothing as ``""``."""
    value = parameters.get(name)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise InvalidParameterError(name, f"not a string: {value!r}")


def _bool(parameters: Mapping[str, Any], name: str, default: bool | None) -> Any:
    """A boolean, or a string ``strconv.ParseBool`` reads."""
    value = parameters.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value in ("1", "t", "T", "TRUE", "true", "True"):
            return True
        if value in ("0", "f", "F", "FALSE", "false", "False"):
            return False
    raise InvalidParameterError(name, f"the {name} parameter should be a boolean, not {value!r}")


def _integer(
    parameters: Mapping[str, Any], name: str, default: int, minimum: int, maximum: int
) -> int:
    """An integer or a numeric string, within Go's bounds."""
    value = parameters.get(name)
    if value is None:
        number = default
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        try:
            number = int(str(value).strip(), 0)
        except ValueError:
            raise InvalidParameterError(name, f"must be an integer, {value!r} invalid") from None
    if not minimum <= number <= maximum:
        raise InvalidParameterError(
            name, f"{number} should be a number between {minimum} and {maximum} (inclusive)"
        )
    return number


def _choice(
    parameters: Mapping[str, Any], name: str, default: str, choices: tuple[str, ...], norm: Any
) -> str:
    value = parameters.get(name)
    if value is None:
        return default
    if not isinstance(value, str) or norm(value) not in choices:
        raise InvalidParameterError(name, f"must be one of {', '.join(choices)}, not {value!r}")
    return norm(value)


def _log_level(value: Any) -> str:
    """Go 3 reads ``loglevel`` leniently (``off`` by YAML is ``false``; anything unknown is
    off); an unknown level is logged here rather than dropped without a word."""
    if value is None or value is False:
        return "off"
    if isinstance(value, str) and value.lower() in LOG_LEVELS:
        return value.lower()
    log.warning("storage.s3.loglevel: unknown level %r, logging off (as Go does)", value)
    return "off"
