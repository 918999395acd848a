"""The one bounded body reader: every endpoint reads its body through it.

It refuses (413) more than the limit without reading past it, and a client that goes
away mid-upload is a 400 ``client disconnected`` (never a 413: nothing was too large).
"""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request

from router.web.errors import HTTPError


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, at most ``limit`` bytes; raises :class:`HTTPError` otherwise."""
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise HTTPError(400, "invalid Content-Length", reason="bad length")
        if int(length) > limit:
            raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        raise HTTPError(400, "client disconnected", reason="disconnected") from None
    return b"".join(chunks)


def too_large(limit: int) -> HTTPError:
    # The connection stays open: the server discards the rest of the upload without
    # buffering it, and the client reliably gets this answer (closing instead makes the
    # client's next write fail with a reset that loses the response).
    detail = f"the limit is {limit} bytes"
    return HTTPError(413, "payload too large", detail, reason="too large")
