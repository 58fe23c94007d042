"""File uploads as fal's storage does them: a CDN token, then a POST of the bytes.

``POST /storage/auth/token?storage_type=fal-cdn-v3`` (with the API key) gives
``{token, token_type, base_url, expires_at}``; ``POST /files/upload`` with
``Authorization: <token_type> <token>`` stores the body and answers
``{access_url}``, served like generated media under ``/files/``. Uploads are
bounded in count and bytes (oldest evicted first) and expire like results.
"""

from __future__ import annotations

import hashlib
import hmac
import mimetypes
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from mockserver.clock import Clock, iso_timestamp


@dataclass(frozen=True, slots=True)
class StoredFile:
    """An uploaded file."""

    data: bytes
    content_type: str
    file_name: str
    expires_at: float


class UploadStore:
    """Uploaded files (bounded, expiring) and the tokens that allow uploads."""

    def __init__(
        self,
        clock: Clock,
        *,
        ttl: float = 3600.0,
        max_files: int = 1000,
        max_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        self._clock = clock
        self._ttl = ttl
        self._max_files = max_files
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._files: OrderedDict[str, StoredFile] = OrderedDict()
        self._bytes = 0

    def issue_token(self, tenant: str) -> dict[str, str]:
        """A new upload token for `tenant` (the token endpoint's body, less base_url).

        Tokens are signed, not stored: fal-client caches its token for an hour
        in a process-wide client, so a token must stay valid for every mock in
        the process (each test of the pytest plugin gets a fresh one).
        """
        nonce = secrets.token_urlsafe(9)
        token = f"{tenant}.{nonce}.{_sign(tenant, nonce)}"
        # Clients compare expires_at with their wall clock, not the mock's.
        expires_at = iso_timestamp(time.time() + 3600)
        return {"token": token, "token_type": "Bearer", "expires_at": expires_at}

    def token_tenant(self, authorization: str | None) -> str | None:
        """The tenant an upload token belongs to (None when it is not one of ours)."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        tenant, _, rest = token.strip().partition(".")
        nonce, _, signature = rest.partition(".")
        if scheme.lower() != "bearer" or not hmac.compare_digest(signature, _sign(tenant, nonce)):
            return None
        return tenant

    def store(self, data: bytes, content_type: str, file_name: str | None) -> str:
        """Keep an upload; returns its name under /files/ (``<id>.<ext>``)."""
        extension = _extension(content_type, file_name)
        name = secrets.token_urlsafe(15) + extension
        stored = StoredFile(
            data=data,
            content_type=content_type or "application/octet-stream",
            file_name=file_name or f"upload{extension}",
            expires_at=self._clock.now() + self._ttl,
        )
        with self._lock:
            self._files[name] = stored
            self._bytes += len(data)
            while self._files and (
                len(self._files) > self._max_files or self._bytes > self._max_bytes
            ):
                _, evicted = self._files.popitem(last=False)
                self._bytes -= len(evicted.data)
        return name

    def get(self, name: str) -> StoredFile | None:
        """An unexpired upload by name."""
        with self._lock:
            stored = self._files.get(name)
            if stored is not None and stored.expires_at <= self._clock.now():
                del self._files[name]
                self._bytes -= len(stored.data)
                return None
            return stored

    def clear(self) -> None:
        """Forget every file."""
        with self._lock:
            self._files.clear()
            self._bytes = 0


_SECRET = secrets.token_bytes(32)  # per process: tokens never outlive it


def _sign(tenant: str, nonce: str) -> str:
    return hmac.new(_SECRET, f"{tenant}.{nonce}".encode(), hashlib.sha256).hexdigest()[:32]


def _extension(content_type: str, file_name: str | None) -> str:
    if file_name and "." in file_name:
        suffix = "." + file_name.rsplit(".", 1)[1]
        if suffix[1:].isalnum() and len(suffix) <= 8:
            return suffix.lower()
    guessed = (
        mimetypes.guess_extension(content_type.split(";")[0].strip()) if content_type else None
    )
    return guessed or ".bin"
