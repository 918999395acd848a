"""A lean HTTP/1.1 load generator: keep-alive connections over asyncio streams.

httpx costs a few milliseconds of client CPU per request on a small machine, which
makes the load generator, not the server, the bottleneck at a few hundred requests a
second on two shared cores. This client only writes a POST and reads the status
line, the headers and a ``Content-Length`` body; nothing else is needed to time a
webhook acknowledgement (``post`` drops the body, ``request`` returns it, e.g. to read
an ack's JSON).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit


class Connections:
    """A pool of keep-alive connections to one ``http://host:port``."""

    def __init__(self, url: str, size: int) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.size = size
        self._idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )
        self._opened = 0

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
        if self._idle.empty() and self._opened < self.size:
            self._opened += 1
            pair = await asyncio.open_connection(self.host, self.port)
        else:
            pair = await self._idle.get()
        try:
            yield pair
        except BaseException:
            pair[1].close()
            self._opened -= 1
            raise
        self._idle.put_nowait(pair)

    async def post(self, path: str, body: bytes) -> int:
        """POST ``body`` as JSON; the response's status code."""
        status, _ = await self.request(path, body)
        return status

    async def request(self, path: str, body: bytes) -> tuple[int, bytes]:
        """POST ``body`` as JSON; the response's status code and body."""
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        async with self.connection() as (reader, writer):
            writer.write(head + body)
            headers = await reader.readuntil(b"\r\n\r\n")
            status = int(headers.split(b" ", 2)[1])
            length = _content_length(headers)
            answer = await reader.readexactly(length) if length else b""
            return status, answer

    async def close(self) -> None:
        while not self._idle.empty():
            _, writer = self._idle.get_nowait()
            writer.close()


def _content_length(headers: bytes) -> int:
    for line in headers.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0
