"""``https://host/path``: PUT each object to ``<base>/<key>`` with a bearer token.

TLS is verified (the system's CAs through certifi, or ``upload.ca_file``). Plain ``http://``
is refused except on loopback, where the token cannot leave the machine (or with
``upload.allow_insecure_http``, loudly). A PUT is confirmed by
a 2xx status; if the server also returns an MD5-shaped ETag, it must match the bytes sent.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import quote, urlsplit

import urllib3

from edge.errors import ConfigError
from edge.upload.config import UploadConfig
from edge.upload.http import check_cleartext, connection_pool, describe, env
from edge.upload.target import StoreError, has_userinfo, redact, redact_uri

_MD5 = re.compile(r'^(?:W/)?"?([0-9a-fA-F]{32})"?$')


class HttpTarget:
    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        parallel: int = 2,
        ca_file: str | None = None,
        allow_insecure_http: bool = False,
    ) -> None:
        # Credentials first: every later message shows the URL, redacted or not.
        if has_userinfo(base_url):
            raise ConfigError(
                "upload.target: put the token in upload.bearer_token or EDGE_UPLOAD_TOKEN, "
                "not in the URL"
            )
        parts = urlsplit(base_url)
        if parts.query or parts.fragment or "?" in base_url or "#" in base_url:
            raise ConfigError(
                f"upload.target: no query or fragment allowed (a token goes in "
                f"upload.bearer_token or EDGE_UPLOAD_TOKEN); got {redact_uri(base_url)!r}"
            )
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"upload.target: expected https://host/path; got {redact_uri(base_url)!r}"
            )
        check_cleartext(base_url, "upload.target", allow_insecure_http=allow_insecure_http)
        self.prefix = ""
        self._base = base_url.rstrip("/")
        self._token = token
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = connection_pool(connect_timeout, read_timeout, parallel, ca_file)

    @classmethod
    def from_uri(cls, uri: str, config: UploadConfig) -> HttpTarget:
        return cls(
            uri,
            token=config.bearer_token or env("EDGE_UPLOAD_TOKEN"),
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            parallel=config.parallel,
            ca_file=config.ca_file,
            allow_insecure_http=config.allow_insecure_http,
        )

    @property
    def uri(self) -> str:
        return redact_uri(self._base)

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self._token,) if self._token else ()

    def url(self, key: str) -> str:
        return f"{self._base}/{quote(key)}"

    def __repr__(self) -> str:
        return f"HttpTarget({self.uri!r})"

    def _fail(self, key: str, what: str, *, offline: bool) -> StoreError:
        return StoreError(redact(f"{self.uri}: {key}: {what}", self.secrets), offline=offline)

    def _request(self, method: str, key: str, body: bytes | None = None, **headers: str) -> int:
        try:
            response = self._http.request(
                method, self.url(key), body=body, headers={**self._headers, **headers}
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._fail(key, describe(exc), offline=True) from None
        status: int = response.status
        etag = response.headers.get("ETag")
        if method == "PUT" and 200 <= status < 300 and etag and body is not None:
            m = _MD5.match(etag)
            if m and m.group(1).lower() != hashlib.md5(body, usedforsecurity=False).hexdigest():
                raise self._fail(key, f"ETag {etag} does not match what was sent", offline=True)
        return status

    def put(self, key: str, data: bytes, content_type: str) -> None:
        status = self._request("PUT", key, data, **{"Content-Type": content_type})
        if not 200 <= status < 300:
            raise self._fail(key, f"HTTP {status}", offline=status >= 500 or status in (408, 429))

    def exists(self, key: str) -> bool:
        status = self._request("HEAD", key)
        if status == 404:
            return False
        if 200 <= status < 300:
            return True
        raise self._fail(key, f"HEAD: HTTP {status}", offline=status >= 500 or status == 429)

    def close(self) -> None:
        self._http.clear()
