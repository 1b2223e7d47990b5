"""TF Serving's HTTP/1.1 server for the REST API, on the standard library's
asyncio streams (no HTTP server package is among the project's dependencies):
Content-Length must be one non-negative integer, chunked bodies are decoded,
every size is capped, and a connection holds no thread while its client is
slow or silent. What a request means is the handler's business
(serving/rest_api.py); this module only carries bytes.
"""
import asyncio
import dataclasses
import http
import json
import logging
import socket
import threading
from concurrent import futures
from typing import Callable, Dict, List, Optional, Set, Tuple

log = logging.getLogger(__name__)


@dataclasses.dataclass
class HttpAnswer:
    status: int
    body: str
    content_type: str = "application/json"
    headers: Tuple[Tuple[str, str], ...] = ()


# (method, path without the query, body) -> the answer; runs on a worker thread.
Handler = Callable[[str, str, bytes], HttpAnswer]

MAX_HEADER_BYTES = 64 * 1024
_READ_CHUNK_BYTES = 1 << 20


class _HttpError(Exception):
    """A request the HTTP layer refuses before any handler sees it; the
    connection is closed after the answer (its body may be unread)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclasses.dataclass
class _Request:
    method: str
    target: str
    version: str
    headers: Dict[str, List[str]]

    def header(self, name: str) -> Optional[str]:
        values = self.headers.get(name)
        return values[-1] if values else None

    @property
    def keep_alive(self) -> bool:
        connection = (self.header("connection") or "").lower()
        if self.version == "HTTP/1.0":
            return connection == "keep-alive"
        return connection != "close"


def _parse_head(head: bytes) -> _Request:
    lines = head[:-4].split(b"\r\n")
    parts = lines[0].decode("latin-1").split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.0", "HTTP/1.1") or not parts[1].startswith("/"):
        raise _HttpError(http.HTTPStatus.BAD_REQUEST, f"malformed request line: {lines[0][:100]!r}")
    headers: Dict[str, List[str]] = {}
    for line in lines[1:]:
        name, separator, value = line.partition(b":")
        if not separator or not name or name != name.strip() or line[:1] in (b" ", b"\t"):
            raise _HttpError(http.HTTPStatus.BAD_REQUEST, f"malformed header line: {line[:100]!r}")
        headers.setdefault(name.decode("latin-1").lower(), []).append(value.strip().decode("latin-1"))
    return _Request(parts[0], parts[1], parts[2], headers)


def _content_length(request: _Request) -> int:
    values = set(request.headers.get("content-length", []))
    if len(values) > 1:
        raise _HttpError(http.HTTPStatus.BAD_REQUEST, f"conflicting Content-Length headers: {sorted(values)}")
    if not values:
        return 0
    text = values.pop()
    if not (text.isascii() and text.isdigit()):
        raise _HttpError(http.HTTPStatus.BAD_REQUEST,
                         f"Content-Length must be a non-negative integer, got {text[:40]!r}")
    return int(text)


class HttpServer:
    """The handler on host:port. The port is bound here, so a busy port fails
    at construction."""

    def __init__(self, handler: Handler, host: str, port: int, max_request_bytes: int, max_workers: int = 16,
                 read_timeout_seconds: float = 30.0):
        self._handler = handler
        self._max_request_bytes = max_request_bytes
        self._read_timeout = read_timeout_seconds
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.create_server((host, port), family=family, backlog=128)
        self.port = self._socket.getsockname()[1]
        self._executor = futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="rest")
        self._loop = asyncio.new_event_loop()
        self._connections: Set[asyncio.Task] = set()
        self._server = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="rest")
        self._started = threading.Event()

    # --- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()
        self._started.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(
            self._serve_connection, sock=self._socket, limit=MAX_HEADER_BYTES))
        self._started.set()
        self._loop.run_forever()

    def stop(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._close_all(), self._loop).result(timeout=30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        else:
            self._socket.close()
        self._loop.close()
        self._executor.shutdown(wait=True, cancel_futures=True)

    async def _close_all(self) -> None:
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    # --- connections ------------------------------------------------------------------------

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._connections.add(task)
        try:
            while await self._serve_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            pass  # the client left, or stalled past the read timeout: nothing to answer
        finally:
            self._connections.discard(task)
            writer.close()

    async def _read(self, awaitable):
        return await asyncio.wait_for(awaitable, self._read_timeout)

    async def _serve_request(self, reader, writer) -> bool:
        """Answers one request; False when the connection is to be closed."""
        try:
            head = await self._read(reader.readuntil(b"\r\n\r\n"))
        except asyncio.IncompleteReadError:
            return False  # closed between requests
        except asyncio.LimitOverrunError:
            await self._write_error(writer, _HttpError(http.HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                                                       f"request head over {MAX_HEADER_BYTES} bytes"))
            return False
        try:
            request = _parse_head(head)
            body = await self._read_body(request, reader, writer)
        except _HttpError as error:
            await self._write_error(writer, error)
            return False
        path = request.target.split("?", 1)[0]
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(self._executor, self._dispatch, request.method, path, body)
        await self._write(writer, answer, request.keep_alive)
        return request.keep_alive

    async def _read_body(self, request: _Request, reader, writer) -> bytes:
        """The whole body, by the same rules for every method (a GET's is ignored)."""
        limit = self._max_request_bytes
        encodings = [coding.strip().lower() for value in request.headers.get("transfer-encoding", [])
                     for coding in value.split(",") if coding.strip()]
        if encodings:
            if "content-length" in request.headers:
                raise _HttpError(http.HTTPStatus.BAD_REQUEST, "both Transfer-Encoding and Content-Length given")
            if encodings != ["chunked"]:
                raise _HttpError(http.HTTPStatus.NOT_IMPLEMENTED,
                                 f"Transfer-Encoding {', '.join(encodings)[:60]} is not supported (only chunked)")
            self._continue(request, writer)
            return await self._read_chunked(reader, limit)
        length = _content_length(request)
        if length > limit:
            if request.header("expect") is None:
                # Read what the client sends anyway, so that it reads the answer, not a reset.
                await self._discard(reader, length)
            raise _HttpError(http.HTTPStatus.TOO_MANY_REQUESTS, _over_the_limit(length, limit))
        self._continue(request, writer)
        return await self._read(reader.readexactly(length)) if length else b""

    @staticmethod
    def _continue(request: _Request, writer) -> None:
        if (request.header("expect") or "").lower() == "100-continue" and request.version == "HTTP/1.1":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    async def _discard(self, reader, length: int) -> None:
        while length > 0:
            chunk = await self._read(reader.read(min(_READ_CHUNK_BYTES, length)))
            if not chunk:
                return
            length -= len(chunk)

    async def _read_chunked(self, reader, limit: int) -> bytes:
        body = bytearray()
        while True:
            line = await self._read(reader.readuntil(b"\r\n"))
            size_text = line[:-2].split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                size = -1
            if size < 0 or not size_text.isalnum():
                raise _HttpError(http.HTTPStatus.BAD_REQUEST, f"malformed chunk size {size_text[:20]!r}")
            if size == 0:
                while (await self._read(reader.readuntil(b"\r\n"))) != b"\r\n":
                    pass  # trailers: ignored
                return bytes(body)
            if len(body) + size > limit:
                raise _HttpError(http.HTTPStatus.TOO_MANY_REQUESTS, _over_the_limit(len(body) + size, limit))
            body += await self._read(reader.readexactly(size))
            if await self._read(reader.readexactly(2)) != b"\r\n":
                raise _HttpError(http.HTTPStatus.BAD_REQUEST, "malformed chunked body: no CRLF after a chunk")

    # --- answers ----------------------------------------------------------------------------

    def _dispatch(self, method: str, path: str, body: bytes) -> HttpAnswer:
        """Runs on a worker thread; a bug costs one request, not the server."""
        try:
            return self._handler(method, path, body)
        except Exception as error:
            log.exception("HTTP %s %s failed", method[:20], path[:200])
            return HttpAnswer(500, json.dumps({"error": f"{type(error).__name__}: {error}"}))

    async def _write_error(self, writer, error: _HttpError) -> None:
        log.debug("refused a request: %s", error.message)
        await self._write(writer, HttpAnswer(error.status, json.dumps({"error": error.message})), keep_alive=False)

    @staticmethod
    async def _write(writer, answer: HttpAnswer, keep_alive: bool) -> None:
        data = answer.body.encode("utf-8")
        try:
            phrase = http.HTTPStatus(answer.status).phrase
        except ValueError:
            phrase = "Unknown"
        head = (f"HTTP/1.1 {int(answer.status)} {phrase}\r\n"
                f"Content-Type: {answer.content_type}\r\nContent-Length: {len(data)}\r\n"
                + "".join(f"{name}: {value}\r\n" for name, value in answer.headers)
                + ("" if keep_alive else "Connection: close\r\n") + "\r\n")
        writer.write(head.encode("latin-1") + data)
        await writer.drain()


def _over_the_limit(length: int, limit: int) -> str:
    return f"request of {length} bytes is over the limit of {limit} bytes"
