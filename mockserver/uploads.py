"""File uploads as fal's storage does them (the HTTP side is `mockserver.storage`).

Two ways in. fal-client's default: ``POST /storage/auth/token`` (with the API
key) gives a CDN token; ``POST /files/upload`` with it stores the body. And
the signed-URL way (@fal-ai/client, fal-client's fallback): an upload
*session* is begun with a content type and file name, the bytes arrive by
``PUT`` (whole, or as numbered parts then a completion), and the file then
appears under ``/files/uploads/``. Sessions expire on the mock's clock; files
are bounded in count and bytes (oldest evicted first) and expire like results.
"""

from __future__ import annotations

import hashlib
import hmac
import mimetypes
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from mockserver.clock import Clock, iso_timestamp


class UploadError(Exception):
    """Why an upload session refused a request (the HTTP layer picks the status)."""


class UnknownUpload(UploadError):
    """No such upload session (never begun, finished, or forgotten by a reset)."""


class ExpiredUpload(UploadError):
    """The session's signed URL has expired on the mock's clock."""


class UploadTooLarge(UploadError):
    """The file would be larger than the store accepts."""


class IncompleteUpload(UploadError):
    """A multipart completion names parts that were not uploaded (or wrong etags)."""


class WrongUploadKind(UploadError):
    """Whole-file bytes sent to a multipart session, or parts to a single one."""


@dataclass(slots=True)
class UploadSession:
    """A begun upload: where its bytes go and what arrived so far."""

    id: str
    tenant: str
    name: str  # the file's name under /files/uploads/
    content_type: str
    file_name: str
    expires_at: float
    multipart: bool
    parts: dict[int, bytes] = field(default_factory=dict)

    def etag(self, number: int) -> str:
        """The etag of an uploaded part (a digest of its bytes, quoted as S3 does)."""
        return '"' + hashlib.md5(self.parts[number], usedforsecurity=False).hexdigest() + '"'


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
        session_ttl: float = 3600.0,
        secret: bytes | None = None,
    ) -> None:
        self._clock = clock
        # Tokens are signed with it: replicas share one so each accepts the others'.
        self._secret = secret or _SECRET
        self._ttl = ttl
        self._max_files = max_files
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._files: OrderedDict[str, StoredFile] = OrderedDict()
        self._bytes = 0
        self._session_ttl = session_ttl
        self._sessions: OrderedDict[str, UploadSession] = OrderedDict()

    def issue_token(self, tenant: str) -> dict[str, str]:
        """A new upload token for `tenant` (the token endpoint's body, less base_url).

        Tokens are signed, not stored: fal-client caches its token for an hour
        in a process-wide client, so a token must stay valid for every mock in
        the process (each test of the pytest plugin gets a fresh one).
        """
        nonce = secrets.token_urlsafe(9)
        token = f"{tenant}.{nonce}.{_sign(self._secret, tenant, nonce)}"
        # Clients compare expires_at with their wall clock, not the mock's.
        expires_at = iso_timestamp(time.time() + 3600)
        return {"token": token, "token_type": "Bearer", "expires_at": expires_at}

    def token_tenant(self, authorization: str | None) -> str | None:
        """The tenant an upload token belongs to (None when it is not one of ours)."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        tenant, _, rest = token.strip().partition(".")
        nonce, _, signature = rest.partition(".")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            signature, _sign(self._secret, tenant, nonce)
        ):
            return None
        return tenant

    def store(
        self, data: bytes, content_type: str, file_name: str | None, *, name: str | None = None
    ) -> str:
        """Keep an upload; returns its name under /files/ (``<id>.<ext>``)."""
        if len(data) > self._max_bytes:
            raise UploadTooLarge(f"{len(data)} bytes is more than the {self._max_bytes} allowed")
        extension = _extension(content_type, file_name)
        name = name or new_name(content_type, file_name)
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
        """Forget every file and upload session."""
        with self._lock:
            self._files.clear()
            self._bytes = 0
            self._sessions.clear()

    # -- signed-URL sessions ------------------------------------------------------

    def begin(
        self, tenant: str, content_type: str, file_name: str, *, multipart: bool = False
    ) -> UploadSession:
        """Start an upload session; its bytes come later by `put` or `put_part`."""
        session = UploadSession(
            id=secrets.token_urlsafe(18),
            tenant=tenant,
            name=secrets.token_urlsafe(15) + _extension(content_type, file_name),
            content_type=content_type or "application/octet-stream",
            file_name=file_name,
            expires_at=self._clock.now() + self._session_ttl,
            multipart=multipart,
        )
        with self._lock:
            self._sessions[session.id] = session
            while len(self._sessions) > self._max_files:  # abandoned sessions
                self._sessions.popitem(last=False)
        return session

    def session(self, session_id: str) -> UploadSession:
        """A live session, or `UnknownUpload` / `ExpiredUpload`."""
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None:
            raise UnknownUpload(session_id)
        if session.expires_at <= self._clock.now():
            raise ExpiredUpload(session_id)
        return session

    def put(self, session_id: str, data: bytes) -> str:
        """The whole file of a single-part session; returns its name (the session ends)."""
        session = self.session(session_id)
        if session.multipart:
            raise WrongUploadKind("this upload takes numbered parts, then a completion")
        name = self.store(data, session.content_type, session.file_name, name=session.name)
        self._end(session)
        return name

    def put_part(self, session_id: str, number: int, data: bytes) -> str:
        """One numbered part (1-based; re-sending replaces it); returns its etag."""
        session = self.session(session_id)
        if not session.multipart:
            raise WrongUploadKind("this upload takes the whole file in one PUT")
        with self._lock:
            others = sum(len(part) for n, part in session.parts.items() if n != number)
            if others + len(data) > self._max_bytes:
                raise UploadTooLarge(f"the parts so far exceed the {self._max_bytes} bytes allowed")
            session.parts[number] = data
        return session.etag(number)

    def complete(self, session_id: str, parts: list[tuple[int, str | None]]) -> str:
        """Join the parts named (number, etag) in number order; returns the file's name.

        Every uploaded part must be named, with its etag when one is given
        (fal-client sends them unsorted; etags are compared without quotes).
        """
        session = self.session(session_id)
        if not session.multipart:
            raise WrongUploadKind("this upload was not begun as multipart")
        named = dict(parts)
        if not named:
            raise IncompleteUpload("no parts were named")
        missing = sorted(set(named) - set(session.parts))
        if missing:
            raise IncompleteUpload(f"parts {missing} were never uploaded")
        unnamed = sorted(set(session.parts) - set(named))
        if unnamed:
            raise IncompleteUpload(f"uploaded parts {unnamed} are not in the completion")
        for number, etag in named.items():
            if etag is not None and etag.strip('"') != session.etag(number).strip('"'):
                raise IncompleteUpload(f"part {number}'s etag does not match what was uploaded")
        data = b"".join(session.parts[n] for n in sorted(session.parts))
        name = self.store(data, session.content_type, session.file_name, name=session.name)
        self._end(session)
        return name

    def _end(self, session: UploadSession) -> None:
        with self._lock:
            self._sessions.pop(session.id, None)


_SECRET = secrets.token_bytes(32)  # per process: tokens never outlive it


def new_name(content_type: str, file_name: str | None) -> str:
    """A fresh, unguessable name for an upload (``<id>.<ext>``)."""
    return secrets.token_urlsafe(15) + _extension(content_type, file_name)


def _sign(secret: bytes, tenant: str, nonce: str) -> str:
    return hmac.new(secret, f"{tenant}.{nonce}".encode(), hashlib.sha256).hexdigest()[:32]


def _extension(content_type: str, file_name: str | None) -> str:
    if file_name and "." in file_name:
        suffix = "." + file_name.rsplit(".", 1)[1]
        if suffix[1:].isalnum() and len(suffix) <= 8:
            return suffix.lower()
    guessed = (
        mimetypes.guess_extension(content_type.split(";")[0].strip()) if content_type else None
    )
    return guessed or ".bin"
