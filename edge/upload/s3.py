"""``s3://bucket/prefix``: any S3-compatible store (AWS, MinIO, SeaweedFS, Ceph), via minio.

Signing (SigV4) is minio's; this module picks the endpoint, region and credentials (config
first, then the standard AWS environment variables) and turns the client's many failure types
into StoreError. A PUT is confirmed by its ETag, which S3 sets to the MD5 of a single-part
upload; where a store does otherwise (SSE-KMS) the object's size is read back instead.
"""

from __future__ import annotations

import hashlib
import io
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError
from minio.helpers import check_bucket_name

from edge.errors import ConfigError
from edge.upload.config import UploadConfig
from edge.upload.http import check_cleartext, connection_pool, describe, env
from edge.upload.layout import split_prefix
from edge.upload.target import StoreError, has_userinfo, redact, redact_uri

# Codes S3 answers when it is busy or briefly broken: retry later, quietly.
_TRANSIENT_CODES = {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout"}


class S3Target:
    """Objects under ``prefix`` in ``bucket``. The bucket must exist: creating it is the
    fleet operator's decision (policy, lifecycle, region), not a device's."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint: str = "https://s3.amazonaws.com",
        region: str = "us-east-1",
        access_key: str,
        secret_key: str,
        session_token: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        parallel: int = 2,
        ca_file: str | None = None,
        allow_insecure_http: bool = False,
    ) -> None:
        parts = urlsplit(endpoint)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path not in "/"
            or has_userinfo(endpoint)
            or "?" in endpoint
            or "#" in endpoint
        ):
            raise ConfigError(
                "upload.endpoint: expected http(s)://host[:port], credentials in "
                f"upload.access_key / upload.secret_key; got {redact_uri(endpoint)!r}"
            )
        # The session token travels in a plain header (X-Amz-Security-Token) and the frames
        # in clear: SigV4 signs requests, it does not encrypt them.
        check_cleartext(endpoint, "upload.endpoint", allow_insecure_http=allow_insecure_http)
        self.bucket = bucket
        self.prefix = prefix
        self._secrets = tuple(s for s in (access_key, secret_key, session_token) if s)
        self._http = connection_pool(connect_timeout, read_timeout, parallel, ca_file)
        self._client = Minio(
            parts.netloc,
            access_key=access_key,
            secret_key=secret_key,
            session_token=session_token,
            secure=parts.scheme == "https",
            region=region,
            http_client=self._http,
        )

    @classmethod
    def from_uri(cls, uri: str, config: UploadConfig) -> S3Target:
        if has_userinfo(uri):
            raise ConfigError(
                "upload.target: keys do not go in the s3:// URI (it shows in process lists "
                "and logs); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or "
                "upload.access_key and upload.secret_key)"
            )
        if "?" in uri or "#" in uri:
            raise ConfigError(
                "upload.target: no query or fragment in an s3:// URI (credentials go in "
                f"AWS_* variables or [upload]); got {redact_uri(uri)!r}"
            )
        parts = urlsplit(uri)
        bucket = parts.netloc
        try:
            check_bucket_name(bucket, strict=True)
        except ValueError:
            raise ConfigError(
                f"upload.target: expected s3://bucket/prefix with a valid bucket name "
                f"(3-63 lowercase letters, digits, '.', '-'); got {redact_uri(uri)!r}"
            ) from None
        access_key = config.access_key or env("AWS_ACCESS_KEY_ID")
        secret_key = config.secret_key or env("AWS_SECRET_ACCESS_KEY")
        if not access_key or not secret_key:
            raise ConfigError(
                "upload: an s3:// target needs credentials: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or upload.access_key and upload.secret_key)"
            )
        return cls(
            bucket,
            split_prefix(parts.path),
            endpoint=config.endpoint
            or env("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
            or "https://s3.amazonaws.com",
            region=config.region or env("AWS_REGION", "AWS_DEFAULT_REGION") or "us-east-1",
            access_key=access_key,
            secret_key=secret_key,
            session_token=config.session_token or env("AWS_SESSION_TOKEN"),
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            parallel=config.parallel,
            ca_file=config.ca_file,
            allow_insecure_http=config.allow_insecure_http,
        )

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    @property
    def secrets(self) -> tuple[str, ...]:
        return self._secrets

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def __repr__(self) -> str:
        return f"S3Target({self.uri!r})"

    def _error(self, key: str, exc: BaseException) -> StoreError:
        offline = True
        if isinstance(exc, S3Error):
            status = exc.response.status if exc.response is not None else 0
            offline = status >= 500 or status == 429 or exc.code in _TRANSIENT_CODES
            what = f"{exc.code}: {exc.message}"
        elif isinstance(exc, ServerError):
            offline, what = True, f"HTTP {exc.status_code}"
        elif isinstance(exc, InvalidResponseError):
            # A non-S3 answer (a proxy's error page): its status says whether to wait.
            status = int(getattr(exc, "_code", 0) or 0)
            offline, what = status >= 500 or status in (0, 429), f"HTTP {status or '?'}"
        else:
            what = describe(exc)
        message = f"{self.uri}: {key}: {what}"
        return StoreError(redact(message, self._secrets), offline=offline)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        try:
            result = self._client.put_object(
                self.bucket, key, io.BytesIO(data), len(data), content_type=content_type
            )
            etag = (result.etag or "").strip('"').lower()
            if etag == hashlib.md5(data, usedforsecurity=False).hexdigest():
                return
            size = self._client.stat_object(self.bucket, key).size
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._error(key, exc) from None
        if size != len(data):
            raise StoreError(
                f"{self.uri}: {key}: stored {size} bytes of {len(data)} (ETag {etag!r})",
                offline=True,
            )

    def exists(self, key: str) -> bool:
        try:
            self._client.stat_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NotFound", "ResourceNotFound"):
                return False
            raise self._error(key, exc) from None
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._error(key, exc) from None
        return True

    def close(self) -> None:
        self._http.clear()
