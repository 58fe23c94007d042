"""fal's storage API over HTTP: what the official clients call to upload files.

- ``POST /storage/auth/token`` → a CDN token; ``POST /files/upload`` with it
  stores the body (fal-client's default path), and for large files
  ``POST /files/upload/multipart`` → ``{access_url, uploadId}``, ``PUT
  {access_url}/multipart/{uploadId}/{n}`` (answers an ``ETag``), ``POST
  .../complete``.
- ``POST /storage/upload/initiate?storage_type=fal-cdn-v3|gcs`` with
  ``{content_type, file_name}`` → ``{upload_url, file_url}``, then ``PUT
  upload_url`` with the bytes (@fal-ai/client, and fal-client's fallback);
  ``.../initiate-multipart`` → the same, then ``PUT {upload_url}/{n}``
  (answers ``{partNumber, etag}``) and ``POST {upload_url}/complete``.

The upload URL is a capability (no key needed to PUT, as with a signed URL)
that expires on the mock's clock. The sessions themselves live in
`mockserver.uploads`; this module only speaks HTTP.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mockserver.errors import MockError
from mockserver.http import (
    HttpError,
    error_response,
    header_map,
    json_response,
    public_base,
    read_json_body,
    read_raw_body,
    validation_error,
)
from mockserver.mock import FalMock, RecordedRequest
from mockserver.redact import redact_headers, redact_query
from mockserver.uploads import (
    ExpiredUpload,
    IncompleteUpload,
    UnknownUpload,
    UploadError,
    UploadSession,
    UploadTooLarge,
    WrongUploadKind,
)

STORAGE_TYPES = ("fal-cdn-v3", "gcs")
_STATUS: dict[type[UploadError], int] = {
    UnknownUpload: 404,
    ExpiredUpload: 403,
    UploadTooLarge: 413,
    IncompleteUpload: 400,
    WrongUploadKind: 400,
}
_DETAIL: dict[type[UploadError], str] = {
    UnknownUpload: "Unknown upload: initiate it first (or it was already completed)",
    ExpiredUpload: "The upload URL has expired: initiate the upload again",
}


def routes() -> list[BaseRoute]:
    """The storage routes (on any host: their paths are not endpoint ids)."""
    return [
        Route("/storage/auth/token", _guard(_cdn_token), methods=["POST"]),
        Route("/storage/upload/initiate", _guard(_initiate), methods=["POST"]),
        Route("/storage/upload/initiate-multipart", _guard(_initiate), methods=["POST"]),
        Route("/storage/uploads/{session}", _guard(_put), methods=["PUT"]),
        Route("/storage/uploads/{session}/complete", _guard(_complete), methods=["POST"]),
        Route("/storage/uploads/{session}/{part:int}", _guard(_put_part), methods=["PUT"]),
        Route("/files/upload", _guard(_cdn_upload), methods=["POST"]),
        Route("/files/upload/multipart", _guard(_cdn_multipart), methods=["POST"]),
        Route(
            "/files/uploads/{name}/multipart/{session}/complete",
            _guard(_complete),
            methods=["POST"],
        ),
        Route(
            "/files/uploads/{name}/multipart/{session}/{part:int}",
            _guard(_put_part),
            methods=["PUT"],
        ),
    ]


def _guard(endpoint: Any) -> Any:
    """Errors as fal-style JSON; every request in the mock's log (action ``upload``)."""

    async def guarded(request: Request) -> Response:
        response: Response
        try:
            response = await endpoint(request)
        except (HttpError, MockError) as error:
            response = error_response(error)
        except UploadError as error:
            detail = _DETAIL.get(type(error)) or f"Upload refused: {error}"
            response = json_response(_STATUS[type(error)], {"detail": detail})
        _record(request, response.status_code)
        return response

    guarded.__name__ = endpoint.__name__
    return guarded


def _record(request: Request, status_code: int) -> None:
    mock = _mock(request)
    query = redact_query(request.query_params) if request.scope["query_string"] else {}
    mock.record(
        RecordedRequest(
            time=mock.clock.now(),
            method=request.method,
            path=request.scope["path"],
            query=query,
            headers=redact_headers(header_map(request).items()),
            action="upload",
            endpoint_id=None,
            request_id=None,
            body=None,
            status_code=status_code,
        )
    )


def _mock(request: Request) -> FalMock:
    mock: FalMock = request.app.state.mock
    return mock


def _file_url(request: Request, mock: FalMock, name: str) -> str:
    return f"{public_base(request, mock.config.public_url)}/files/uploads/{name}"


async def _cdn_token(request: Request) -> Response:
    """The CDN token fal-client asks for before an upload."""
    mock = _mock(request)
    tenant = mock.authenticate(header_map(request).get("authorization"))
    body = mock.uploads.issue_token(tenant)
    return json_response(200, {**body, "base_url": public_base(request, mock.config.public_url)})


def _token_tenant(request: Request, mock: FalMock) -> str:
    tenant = mock.uploads.token_tenant(header_map(request).get("authorization"))
    if tenant is None:
        raise HttpError(
            401, {"detail": "Missing or unknown upload token: POST /storage/auth/token first"}
        )
    return tenant


async def _cdn_upload(request: Request) -> Response:
    """Store an uploaded file (CDN token path); answers its public URL."""
    mock = _mock(request)
    _token_tenant(request, mock)
    raw = await read_raw_body(request, mock.config.max_body_bytes)
    headers = header_map(request)
    content_type = headers.get("content-type", "application/octet-stream")
    name = mock.uploads.store(raw, content_type, headers.get("x-fal-file-name"))
    return json_response(200, {"access_url": _file_url(request, mock, name)})


async def _cdn_multipart(request: Request) -> Response:
    """Begin a multipart upload on the CDN path: ``{access_url, uploadId}``."""
    mock = _mock(request)
    tenant = _token_tenant(request, mock)
    headers = header_map(request)
    content_type = headers.get("content-type", "application/octet-stream")
    file_name = headers.get("x-fal-file-name") or "upload.bin"
    session = mock.uploads.begin(tenant, content_type, file_name, multipart=True)
    access_url = _file_url(request, mock, session.name)
    return json_response(200, {"access_url": access_url, "uploadId": session.id})


async def _initiate(request: Request) -> Response:
    """Begin a signed-URL upload: ``{upload_url, file_url}``."""
    mock = _mock(request)
    storage_type = request.query_params.get("storage_type", "fal-cdn-v3")
    if storage_type not in STORAGE_TYPES:
        raise validation_error(
            ["query", "storage_type"], "Input should be 'fal-cdn-v3' or 'gcs'", "enum"
        )
    tenant = mock.authenticate(header_map(request).get("authorization"))
    _, body = await read_json_body(request, 64 * 1024)
    if not isinstance(body, dict):
        raise validation_error(["body"], "Input should be a valid dictionary", "dict_type")
    content_type = body.get("content_type", "application/octet-stream")
    file_name = body.get("file_name", "upload.bin")
    for field, value in (("content_type", content_type), ("file_name", file_name)):
        if not isinstance(value, str) or not value or len(value) > 1024:
            raise validation_error(["body", field], "Input should be a valid string", "string_type")
    multipart = request.url.path.endswith("-multipart")
    session = mock.uploads.begin(tenant, content_type, file_name, multipart=multipart)
    base = public_base(request, mock.config.public_url)
    return json_response(
        200,
        {
            "upload_url": f"{base}/storage/uploads/{session.id}",
            "file_url": _file_url(request, mock, session.name),
        },
    )


def _session(request: Request, mock: FalMock) -> UploadSession:
    session = mock.uploads.session(request.path_params["session"])
    name = request.path_params.get("name")
    if name is not None:  # the CDN path repeats the file's name: it must be this upload's
        if name != session.name:
            raise UnknownUpload(name)
        if _token_tenant(request, mock) != session.tenant:
            raise UnknownUpload(name)
    return session


async def _put(request: Request) -> Response:
    """The whole file of a single-part upload."""
    mock = _mock(request)
    session = _session(request, mock)
    raw = await read_raw_body(request, mock.config.max_body_bytes)
    mock.uploads.put(session.id, raw)
    return Response(status_code=200)


async def _put_part(request: Request) -> Response:
    """One numbered part of a multipart upload; its etag in the body and the header."""
    mock = _mock(request)
    session = _session(request, mock)
    number = request.path_params["part"]
    if not 1 <= number <= 10_000:
        raise validation_error(
            ["path", "part"], "Part numbers go from 1 to 10000", "less_than_equal"
        )
    raw = await read_raw_body(request, mock.config.max_body_bytes)
    etag = mock.uploads.put_part(session.id, number, raw)
    return json_response(200, {"partNumber": number, "etag": etag}, {"ETag": etag})


async def _complete(request: Request) -> Response:
    """Join the parts (``{"parts": [{"partNumber", "etag"}]}``) into the file."""
    mock = _mock(request)
    session = _session(request, mock)
    _, body = await read_json_body(request, 1024 * 1024, strict_type=False)
    parts = body.get("parts") if isinstance(body, dict) else None
    if not isinstance(parts, list):
        raise validation_error(["body", "parts"], "Field required", "missing")
    named: list[tuple[int, str | None]] = []
    for index, part in enumerate(parts):
        number = part.get("partNumber") if isinstance(part, dict) else None
        etag = part.get("etag") if isinstance(part, dict) else None
        if not isinstance(number, int) or isinstance(number, bool):
            raise validation_error(
                ["body", "parts", index, "partNumber"], "Input should be an integer", "int_type"
            )
        if etag is not None and not isinstance(etag, str):
            raise validation_error(
                ["body", "parts", index, "etag"], "Input should be a string", "string_type"
            )
        named.append((number, etag))
    name = mock.uploads.complete(session.id, named)
    return json_response(200, {"file_url": _file_url(request, mock, name)})
