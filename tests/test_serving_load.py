"""Load with a version swap in the middle: concurrent clients keep sending
while a new version is pushed; no request may fail, and the answers must move
to the new version (and never back)."""
import os
import threading
import time

import pytest

from serving.client import ClientOptions, PredictionClient
from tests.serving_helpers import LOOPBACK, MODEL, REPO_ROOT, push, read_bytes, sample_images, start_server

CLIENTS = 8
REQUESTS_PER_CLIENT = 250
PUSH_AFTER_REQUESTS = CLIENTS * REQUESTS_PER_CLIENT // 4


@pytest.mark.slow
@pytest.mark.parametrize("batching", [False, True], ids=["unbatched", "batched"])
def test_zero_failures_while_a_new_version_is_pushed(tmp_path, exported_models, batching):
    base = str(tmp_path / "models")
    push(exported_models[1], base, MODEL, 1)
    batching_file = os.path.join(REPO_ROOT, "serving", "configs", "batching_parameters.txt")
    server = start_server(serving_root=base, file_system_poll_wait_seconds=0.1, enable_batching=batching,
                          batching_parameters_file=batching_file if batching else "")
    images = [read_bytes(path) for path, _ in sample_images()]
    versions = [[] for _ in range(CLIENTS)]
    failures = []
    completed = [0]
    lock = threading.Lock()

    def client_loop(index):
        options = ClientOptions(timeout_seconds=30, retries=0)
        with PredictionClient(f"{LOOPBACK}:{server.port}", options) as client:
            for request in range(REQUESTS_PER_CLIENT):
                try:
                    result = client.predict([images[(index * 31 + request) % len(images)]], MODEL)
                    versions[index].append(result.version)
                except Exception as error:  # every failure is a test failure; keep going to count them
                    failures.append(f"client {index} request {request}: {error!r}")
                with lock:
                    completed[0] += 1

    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(CLIENTS)]
    started = time.monotonic()
    try:
        for thread in threads:
            thread.start()
        while completed[0] < PUSH_AFTER_REQUESTS and any(t.is_alive() for t in threads):
            time.sleep(0.01)
        push(exported_models[2], base, MODEL, 2)
        pushed_at = completed[0]
        for thread in threads:
            thread.join(timeout=120)
    finally:
        server.stop()
    elapsed = time.monotonic() - started
    assert not failures, f"{len(failures)} failed requests, first: {failures[:3]}"
    assert sum(map(len, versions)) == CLIENTS * REQUESTS_PER_CLIENT
    for client_versions in versions:
        assert client_versions[0] == 1
        assert client_versions[-1] == 2, "the new version never reached this client"
        assert client_versions == sorted(client_versions), "a client went back to the old version"
    served_by_v1 = sum(v.count(1) for v in versions)
    assert served_by_v1 >= pushed_at - CLIENTS
    print(f"{CLIENTS * REQUESTS_PER_CLIENT} requests in {elapsed:.1f} s, pushed after {pushed_at}, "
          f"{served_by_v1} answered by version 1")
