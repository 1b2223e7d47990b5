"""TF Serving's REST API on an asyncio HTTP/1.1 server:

    GET  /v1/models/NAME[/versions/N | /labels/L]            -> model status
    GET  /v1/models/NAME[/versions/N | /labels/L]/metadata   -> signature defs
    POST /v1/models/NAME[/versions/N | /labels/L]:predict    -> {"predictions"|"outputs": ...}
    GET  <prometheus path>  (when the monitoring config enables it)

Requests are turned into the same PredictRequest protos the gRPC API takes,
so both APIs share one code path and one set of errors. JSON follows TF
Serving's conventions: row ("instances") or columnar ("inputs") format, binary
strings as {"b64": ...}, errors as {"error": message}.

HTTP/1.1 itself is parsed here on the standard library's asyncio streams (no
HTTP server package is among the project's dependencies): Content-Length must
be one non-negative integer, chunked bodies are decoded, every size is capped,
and a connection holds no thread while its client is slow or silent.
"""
import asyncio
import base64
import dataclasses
import http
import json
import logging
import re
import socket
import threading
from concurrent import futures
from typing import Dict, List, Optional, Set

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, model_pb2, predict_pb2

from components import contract
from serving.errors import ServingError, invalid_argument, not_found
from serving.grpc_services import SIGNATURE_DEF_FIELD, get_model_metadata, get_model_status
from serving.metrics import Metrics
from serving.model_manager import ModelManager

log = logging.getLogger(__name__)
REST_ENTRYPOINT = "REST"
_MODEL_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<suffix>/metadata|:predict)?$")
_B64 = "b64"
_BYTES_SUFFIX = "_bytes"


def _model_spec(match) -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=match["name"])
    if match["version"]:
        spec.version.value = int(match["version"])
    elif match["label"]:
        spec.version_label = match["label"]
    return spec


def _decode_value(value):
    """JSON value -> Python value; {"b64": s} -> bytes, nested lists kept."""
    if isinstance(value, dict):
        if set(value) == {_B64}:
            try:
                return base64.b64decode(value[_B64], validate=True)
            except (ValueError, TypeError) as error:
                raise invalid_argument(f"bad base64 in a {{\"b64\": ...}} value: {error}") from None
        raise invalid_argument(f"unexpected JSON object where a tensor value was expected: {list(value)}")
    if isinstance(value, list):
        return [_decode_value(item) for item in value]
    return value


def _to_tensor_proto(alias: str, value, dtype_enum: int):
    dtype = tf.dtypes.as_dtype(dtype_enum)
    try:
        if dtype == tf.string:
            array = np.array(value, dtype=object)
            array = np.vectorize(lambda v: v.encode("utf-8") if isinstance(v, str) else v,
                                 otypes=[object])(array) if array.size else array
            if array.size and not all(isinstance(v, bytes) for v in array.flat):
                raise ValueError("expected strings or {\"b64\": ...} values")
        else:
            array = np.array(value, dtype=dtype.as_numpy_dtype)
        return tf.make_tensor_proto(array, dtype=dtype, shape=array.shape)
    except (ValueError, TypeError) as error:
        raise invalid_argument(f"input '{alias}': cannot be read as "
                               f"{types_pb2.DataType.Name(dtype_enum)}: {error}") from None


def predict_request_from_json(body: dict, spec: model_pb2.ModelSpec, signature_def) -> tuple:
    """TF Serving's JSON predict request -> (PredictRequest, row_format)."""
    if not isinstance(body, dict):
        raise invalid_argument("the request body must be a JSON object")
    if ("instances" in body) == ("inputs" in body):
        raise invalid_argument('the request must have exactly one of "instances" or "inputs"')
    aliases = sorted(signature_def.inputs)
    request = predict_pb2.PredictRequest()
    request.model_spec.CopyFrom(spec)
    request.model_spec.signature_name = body.get("signature_name", "") or contract.SERVING_SIGNATURE
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise invalid_argument('"instances" must be a list')
        named = (instances and all(isinstance(i, dict) and set(i) != {_B64} for i in instances))
        if len(aliases) > 1 or named:
            columns = {alias: [] for alias in aliases}
            for index, instance in enumerate(instances):
                if not isinstance(instance, dict) or set(instance) != set(aliases):
                    raise invalid_argument(f"instance {index}: expected an object with keys {aliases}")
                for alias in aliases:
                    columns[alias].append(_decode_value(instance[alias]))
        else:
            columns = {aliases[0]: [_decode_value(i) for i in instances]}
    else:
        inputs = body["inputs"]
        if isinstance(inputs, dict) and set(inputs) != {_B64}:
            columns = {alias: _decode_value(value) for alias, value in inputs.items()}
        elif len(aliases) == 1:
            columns = {aliases[0]: _decode_value(inputs)}
        else:
            raise invalid_argument(f'"inputs" must be an object with keys {aliases}')
    for alias, value in columns.items():
        if alias not in signature_def.inputs:
            raise invalid_argument(f"input tensor alias not found in signature: {alias}. "
                                   f"Inputs expected to be in the set {{{', '.join(aliases)}}}.")
        request.inputs[alias].CopyFrom(_to_tensor_proto(alias, value, signature_def.inputs[alias].dtype))
    return request, "instances" in body


def _json_value(alias: str, array: np.ndarray):
    if array.dtype == object:
        def convert(item):
            if not alias.endswith(_BYTES_SUFFIX):
                try:
                    return item.decode("utf-8")
                except UnicodeDecodeError:
                    pass
            return {_B64: base64.b64encode(item).decode("ascii")}
        return np.vectorize(convert, otypes=[object])(array).tolist() if array.size else array.tolist()
    return array.tolist()


def predict_response_to_json(response: predict_pb2.PredictResponse, row_format: bool) -> dict:
    arrays = {alias: tf.make_ndarray(proto) for alias, proto in response.outputs.items()}
    values = {alias: _json_value(alias, array) for alias, array in arrays.items()}
    if not row_format:
        return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    rows = {len(value) if isinstance(value, list) else -1 for value in values.values()}
    if len(rows) != 1 or -1 in rows:
        raise invalid_argument("outputs differ in their batch size; use the columnar \"inputs\" format")
    count = rows.pop()
    return {"predictions": [{alias: value[i] for alias, value in values.items()} for i in range(count)]}


class RestApi:
    """The REST handlers, independent of the HTTP server they run in."""

    def __init__(self, manager: ModelManager, metrics: Metrics, max_request_bytes: int,
                 prometheus_path: Optional[str] = None):
        self.manager = manager
        self.metrics = metrics
        self.max_request_bytes = max_request_bytes
        self.prometheus_path = prometheus_path

    def get(self, path: str):
        if self.prometheus_path and path == self.prometheus_path:
            return http.HTTPStatus.OK, self.metrics.prometheus_text(), "text/plain; version=0.0.4"
        match = _MODEL_PATH.match(path)
        if not match or match["suffix"] == ":predict":
            raise not_found(f"Malformed request: GET {path}")
        spec = _model_spec(match)
        if match["suffix"] == "/metadata":
            request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=[SIGNATURE_DEF_FIELD])
            request.model_spec.CopyFrom(spec)
            return http.HTTPStatus.OK, self._metadata_json(get_model_metadata(self.manager, request)), None
        request = get_model_status_pb2.GetModelStatusRequest(model_spec=spec)
        response = get_model_status(self.manager, request)
        return http.HTTPStatus.OK, json_format.MessageToDict(
            response, preserving_proto_field_name=True, always_print_fields_with_no_presence=True), None

    def _metadata_json(self, response) -> dict:
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata[SIGNATURE_DEF_FIELD].Unpack(signature_map)
        return {"model_spec": json_format.MessageToDict(response.model_spec, preserving_proto_field_name=True),
                "metadata": {SIGNATURE_DEF_FIELD: json_format.MessageToDict(
                    signature_map, preserving_proto_field_name=True)}}

    def post(self, path: str, body: bytes):
        match = _MODEL_PATH.match(path)
        if not match or match["suffix"] != ":predict":
            raise not_found(f"Malformed request: POST {path}")
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError) as error:
            raise invalid_argument(f"JSON Parse error: {error}") from None
        except RecursionError:
            raise invalid_argument("JSON Parse error: nested too deeply") from None
        spec = _model_spec(match)
        servable = self.manager.resolve(spec)
        signature_name = (document.get("signature_name") if isinstance(document, dict) else None)
        signature_def = servable.signature(signature_name or contract.SERVING_SIGNATURE)
        try:
            request, row_format = predict_request_from_json(document, spec, signature_def)
        except RecursionError:
            raise invalid_argument("the request's values are nested too deeply for a tensor") from None
        return http.HTTPStatus.OK, predict_response_to_json(servable.predict(request), row_format), None


# --- HTTP/1.1 on asyncio streams ------------------------------------------------------------
# A connection holds no thread while its client sends, stalls or idles; only a
# complete request takes a worker thread, for as long as the model runs.

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


class RestServer:
    """RestApi on host:port (port 0: any free port). The port is bound here,
    so a busy port fails at construction."""

    def __init__(self, api: RestApi, host: str, port: int, max_workers: int = 16,
                 read_timeout_seconds: float = 30.0):
        self._api = api
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
        if request.method == "GET":
            api_name, work = "get", lambda: self._api.get(path)
        elif request.method == "POST":
            api_name, work = "predict", lambda: self._api.post(path, body)
        else:
            await self._write_error(writer, _HttpError(http.HTTPStatus.METHOD_NOT_ALLOWED,
                                                       f"method {request.method[:20]} is not supported"))
            return False
        loop = asyncio.get_running_loop()
        status, payload, content_type = await loop.run_in_executor(
            self._executor, self._dispatch, api_name, path, work)
        await self._write(writer, status, payload, content_type, request.keep_alive)
        return request.keep_alive

    async def _read_body(self, request: _Request, reader, writer) -> bytes:
        """The whole body, by the same rules for every method (a GET's is ignored)."""
        limit = self._api.max_request_bytes
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

    def _dispatch(self, api_name: str, path: str, work):
        """Runs on a worker thread: the handler's answer, or its error as TF Serving words it."""
        match = _MODEL_PATH.match(path)
        with self._api.metrics.track(api_name, match["name"] if match else "", REST_ENTRYPOINT) as outcome:
            try:
                return work()
            except ServingError as error:
                outcome.code = error.code
                return error.http_status, {"error": error.message}, None
            except Exception as error:  # a bug must cost one request, not the server
                log.exception("REST %s %s failed", api_name, path)
                outcome.code = grpc.StatusCode.INTERNAL
                return 500, {"error": f"{type(error).__name__}: {error}"}, None

    async def _write_error(self, writer, error: _HttpError) -> None:
        log.debug("refused a request: %s", error.message)
        await self._write(writer, error.status, {"error": error.message}, None, keep_alive=False)

    @staticmethod
    async def _write(writer, status: int, payload, content_type: Optional[str], keep_alive: bool) -> None:
        if content_type is None:
            data = json.dumps(payload).encode("utf-8")
            content_type = "application/json"
        else:
            data = payload.encode("utf-8")
        head = (f"HTTP/1.1 {int(status)} {http.HTTPStatus(status).phrase}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(data)}\r\n"
                + ("" if keep_alive else "Connection: close\r\n") + "\r\n")
        writer.write(head.encode("latin-1") + data)
        await writer.drain()


def _over_the_limit(length: int, limit: int) -> str:
    return f"request of {length} bytes is over the limit of {limit} bytes"
