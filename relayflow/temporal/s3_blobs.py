"""Claim-check blobs in S3-compatible object storage, with a minimal signed-request client.

Five calls are all the claim check needs (HEAD, PUT, GET, DELETE of an object,
and ListObjectsV2), so they are made with ``urllib`` and AWS Signature
Version 4 rather than a full SDK. Path-style addressing
(``<endpoint>/<bucket>/<key>``), which every S3-compatible server accepts.
A PUT is atomic in S3: an object is either whole or absent, so a process
that dies mid-upload leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["S3BlobStore", "S3Error"]

_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class S3Error(RuntimeError):
    """The object store answered with an error (its status and message)."""


@dataclass(frozen=True)
class S3BlobStore:
    """Blobs as objects under ``prefix`` in ``bucket``.

    Attributes:
        endpoint: ``http(s)://host:port`` of the S3 API.
        bucket: The bucket (must exist).
        access_key: Access key id.
        secret_key: Secret access key.
        region: Signing region (``us-east-1`` for most S3-compatible servers).
        prefix: Key prefix of every blob, e.g. ``relayflow/``.
        timeout: Seconds per request.
    """

    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    prefix: str = ""
    timeout: float = 30.0

    def put(self, name: str, data: bytes) -> bool:
        """Store ``data`` under ``name`` unless an object is there; True when written."""
        if self._request("HEAD", name, missing_ok=True) is not None:
            return False
        self._request("PUT", name, body=data)
        return True

    def get(self, name: str) -> bytes:
        """The object's bytes.

        Raises:
            FileNotFoundError: No such object.
        """
        found = self._request("GET", name, missing_ok=True)
        if found is None:
            raise FileNotFoundError(name)
        return found

    def delete(self, name: str) -> None:
        """Delete the object (S3 answers a missing one with success too)."""
        self._request("DELETE", name)

    def list(self, prefix: str) -> Iterator[tuple[str, float]]:
        """Names under ``prefix`` with their last-modified time, page by page."""
        token = ""
        while True:
            query = {"list-type": "2", "prefix": f"{self.prefix}{prefix}"}
            if token:
                query["continuation-token"] = token
            answer = self._request("GET", None, query=query)
            assert answer is not None
            root = ET.fromstring(answer)  # noqa: S314 - see the import
            for item in root.iter(f"{_NS}Contents"):
                key = item.findtext(f"{_NS}Key", "")
                modified = dt.datetime.fromisoformat(
                    item.findtext(f"{_NS}LastModified", ""))
                yield key.removeprefix(self.prefix), modified.timestamp()
            token = root.findtext(f"{_NS}NextContinuationToken", "")
            if root.findtext(f"{_NS}IsTruncated") != "true" or not token:
                return

    def _request(self, method: str, name: str | None, *, body: bytes = b"",
                 query: dict[str, str] | None = None, missing_ok: bool = False) -> bytes | None:
        key = "" if name is None else urllib.parse.quote(f"{self.prefix}{name}", safe="/-_.~")
        path = f"/{self.bucket}/{key}" if name is not None else f"/{self.bucket}"
        canonical_query = "&".join(
            f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
            for k, v in sorted((query or {}).items()))
        url = f"{self.endpoint.rstrip('/')}{path}" + (f"?{canonical_query}" if query else "")
        request = urllib.request.Request(url, data=body or None, method=method,  # noqa: S310
                                         headers=self._signed(method, path, canonical_query,
                                                              body))
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return bytes(response.read())
        except urllib.error.HTTPError as error:
            if error.code == 404 and missing_ok:  # noqa: PLR2004
                return None
            detail = error.read()[:300].decode(errors="replace")
            raise S3Error(f"S3 {method} {path}: {error.code} {detail}") from None

    def _signed(self, method: str, path: str, query: str, body: bytes) -> dict[str, str]:
        """Headers of a request signed with AWS Signature Version 4."""
        now = dt.datetime.now(dt.UTC)
        stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        host = urllib.parse.urlsplit(self.endpoint).netloc
        payload_hash = hashlib.sha256(body).hexdigest() if body else _EMPTY_SHA256
        headers = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": stamp}
        signed = ";".join(sorted(headers))
        canonical = "\n".join([
            method, urllib.parse.quote(path, safe="/-_.~%"), query,
            *(f"{name}:{headers[name]}" for name in sorted(headers)), "", signed, payload_hash])
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope,
                             hashlib.sha256(canonical.encode()).hexdigest()])
        key = f"AWS4{self.secret_key}".encode()
        for part in (day, self.region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        return {"x-amz-content-sha256": payload_hash, "x-amz-date": stamp,
                "Authorization": f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
                                 f"SignedHeaders={signed}, Signature={signature}"}
