"""The REST API under malformed or hostile HTTP: raw requests over loopback
sockets (HTTP client libraries refuse to send most of these)."""
import base64
import json
import socket
import threading
import time

import pytest
import requests

from tests.serving_helpers import LOOPBACK, MODEL, read_bytes, sample_images

IMAGES = sample_images()
PREDICT_PATH = f"/v1/models/{MODEL}:predict"


def predict_body(count=1) -> bytes:
    image = {"b64": base64.b64encode(read_bytes(IMAGES[0][0])).decode("ascii")}
    return json.dumps({"instances": [image] * count}).encode()


def read_response(sock):
    """(status, headers, body) of one HTTP/1.1 response with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a full response head: {data!r}")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {name.lower(): value.strip() for name, value in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", 0))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def exchange(port, data: bytes, timeout=10.0):
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_response(sock)


def post_head(headers: str) -> bytes:
    return (f"POST {PREDICT_PATH} HTTP/1.1\r\nHost: {LOOPBACK}\r\nContent-Type: application/json\r\n"
            f"{headers}\r\n").encode("latin-1")


def chunked(body: bytes, size=1000) -> bytes:
    chunks = [body[i:i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"


def assert_refused(reply, status):
    got, headers, body = reply
    assert got == status, body
    assert json.loads(body)["error"]
    assert headers.get("connection") == "close"


def test_a_negative_content_length_is_refused_at_once(server):
    started = time.monotonic()
    assert_refused(exchange(server.rest_port, post_head("Content-Length: -1\r\n") + b"{}"), 400)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("headers", [
    "Content-Length: abc\r\n",
    "Content-Length: 1e3\r\n",
    "Content-Length: 2\r\nContent-Length: 3\r\n",
    "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n",
])
def test_a_malformed_content_length_is_400(server, headers):
    assert_refused(exchange(server.rest_port, post_head(headers) + b"{}"), 400)


def test_json_nested_100000_deep_is_400(server):
    body = b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    status, _, reply = exchange(server.rest_port, post_head(f"Content-Length: {len(body)}\r\n") + body)
    assert status == 400, reply
    assert "nested too deeply" in json.loads(reply)["error"]


def test_a_chunked_body_is_read_and_judged_like_any_other(server):
    body = predict_body(2)
    status, _, reply = exchange(server.rest_port, post_head("Transfer-Encoding: chunked\r\n") + chunked(body))
    assert status == 200, reply
    assert len(json.loads(reply)["predictions"]) == 2
    assert_refused(exchange(server.rest_port, post_head("Transfer-Encoding: chunked\r\n") + b"zz\r\n{}\r\n0\r\n\r\n"),
                   400)
    assert_refused(exchange(server.rest_port, post_head("Transfer-Encoding: gzip\r\n") + b"{}"), 501)


def test_a_chunked_body_over_the_limit_is_429(server):
    limit = server.options.max_request_bytes
    size = 1 << 20
    head = post_head("Transfer-Encoding: chunked\r\n")
    with socket.create_connection((LOOPBACK, server.rest_port), timeout=30) as sock:
        sock.sendall(head)
        sent = 0
        try:
            while sent <= limit:
                sock.sendall(b"%x\r\n" % size + b"x" * size + b"\r\n")
                sent += size
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed as soon as the limit was passed
        assert_refused(read_response(sock), 429)


def test_expect_100_continue_is_answered_before_the_body(server):
    body = predict_body()
    with socket.create_connection((LOOPBACK, server.rest_port), timeout=10) as sock:
        sock.sendall(post_head(f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n"))
        assert sock.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        status, _, reply = read_response(sock)
    assert status == 200, reply


def test_an_over_sized_head_is_431(server):
    huge = "X-Padding: " + "a" * 70_000 + "\r\n"
    assert_refused(exchange(server.rest_port, post_head(huge)), 431)


def test_stalled_clients_hold_no_thread_and_do_not_delay_others(server):
    threads_before = threading.active_count()
    stalled = []
    try:
        for _ in range(40):  # more than the REST worker threads
            sock = socket.create_connection((LOOPBACK, server.rest_port), timeout=10)
            sock.sendall(post_head("Content-Length: 1000\r\n") + b'{"instances"')  # and then nothing
            stalled.append(sock)
        half_head = socket.create_connection((LOOPBACK, server.rest_port), timeout=10)
        half_head.sendall(b"POST " + PREDICT_PATH.encode() + b" HTTP/1.1\r\nHost: x\r\n")
        stalled.append(half_head)
        time.sleep(0.5)
        started = time.monotonic()
        reply = requests.post(f"http://{LOOPBACK}:{server.rest_port}{PREDICT_PATH}", data=predict_body(), timeout=10)
        assert reply.status_code == 200, reply.text
        assert time.monotonic() - started < 5
        assert threading.active_count() - threads_before < 5
    finally:
        for sock in stalled:
            sock.close()


def test_keep_alive_connections_serve_several_requests(server):
    body = predict_body()
    request = post_head(f"Content-Length: {len(body)}\r\n") + body
    with socket.create_connection((LOOPBACK, server.rest_port), timeout=10) as sock:
        for _ in range(3):
            sock.sendall(request)
            status, headers, _ = read_response(sock)
            assert status == 200 and headers.get("connection") != "close"
        sock.sendall(f"GET /v1/models/{MODEL} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        status, headers, reply = read_response(sock)
        assert status == 200 and headers["connection"] == "close"
        assert json.loads(reply)["model_version_status"][0]["state"] == "AVAILABLE"
        assert sock.recv(1) == b""
