"""Server-side batching: concurrent requests really share model calls, each
caller gets exactly its rows, a bad request fails alone."""
import threading
import time

import grpc
import numpy as np
import pytest

from components import contract
from serving.batching import Batcher, BatchingOptions
from serving.client import PredictionClient
from serving.errors import ServingError
from serving.servable import Servable
from tests.serving_helpers import LOOPBACK, MODEL, REPO_ROOT, push, read_bytes, sample_images, start_server

IMAGES = [read_bytes(path) for path, _ in sample_images()]


class RecordingRunner:
    """The servable's real runner, noting the batch size of every call."""

    def __init__(self, servable, gate=None):
        self.servable, self.gate, self.sizes = servable, gate, []
        self.entered = threading.Event()

    def __call__(self, signature_name, inputs, output_aliases):
        self.entered.set()
        if self.gate is not None:
            self.gate.wait()
        self.sizes.append(len(inputs[contract.SERVING_INPUT_KEY]))
        return self.servable.run_signature(signature_name, inputs, output_aliases)


def signature_run(servable, images):
    """The arguments of a serving-signature run on these images, every output asked for."""
    outputs = sorted(servable.signature_defs[contract.SERVING_SIGNATURE].outputs)
    return contract.SERVING_SIGNATURE, {contract.SERVING_INPUT_KEY: np.array(images, dtype=object)}, outputs


@pytest.fixture(scope="module")
def servable(exported_models):
    return Servable.load(MODEL, 1, exported_models[1])


def run_concurrently(batcher, servable, requests):
    """Sends each list of images as one call, all at once; returns outputs or errors."""
    start = threading.Barrier(len(requests))
    results = [None] * len(requests)

    def send(index):
        start.wait()
        try:
            results[index] = batcher(*signature_run(servable, requests[index]))
        except ServingError as error:
            results[index] = error

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def direct(servable, images):
    return servable.run_signature(*signature_run(servable, images))


def test_concurrent_requests_share_model_calls_and_get_their_own_rows(servable):
    runner = RecordingRunner(servable)
    batcher = Batcher(runner, BatchingOptions(max_batch_size=8, batch_timeout_micros=200_000, num_batch_threads=1))
    requests = [[IMAGES[i], IMAGES[i + 20]] if i % 3 == 0 else [IMAGES[i]] for i in range(12)]
    try:
        results = run_concurrently(batcher, servable, requests)
    finally:
        batcher.close()
    assert sum(runner.sizes) == sum(len(r) for r in requests)
    assert max(runner.sizes) > 2 and max(runner.sizes) <= 8
    assert len(runner.sizes) < len(requests)
    for images, result in zip(requests, results):
        np.testing.assert_allclose(result[contract.PROBABILITIES_KEY],
                                   direct(servable, images)[contract.PROBABILITIES_KEY], rtol=1e-5, atol=1e-6)


def test_batches_are_padded_to_allowed_sizes(servable):
    runner = RecordingRunner(servable)
    options = BatchingOptions(max_batch_size=8, batch_timeout_micros=200_000, num_batch_threads=1,
                              allowed_batch_sizes=(4, 8))
    batcher = Batcher(runner, options)
    try:
        results = run_concurrently(batcher, servable, [[IMAGES[i]] for i in range(3)])
    finally:
        batcher.close()
    assert set(runner.sizes) <= {4, 8}
    assert all(len(r[contract.CLASSES_KEY]) == 1 for r in results)


def test_a_bad_image_fails_only_its_own_request(servable):
    batcher = Batcher(RecordingRunner(servable), BatchingOptions(max_batch_size=8, batch_timeout_micros=200_000,
                                                                 num_batch_threads=1))
    try:
        results = run_concurrently(batcher, servable, [[IMAGES[0]], [b"not an image"], [IMAGES[1]], [b""]])
    finally:
        batcher.close()
    assert [isinstance(r, ServingError) for r in results] == [False, True, False, True]
    assert results[1].code == grpc.StatusCode.INVALID_ARGUMENT


def test_a_full_queue_is_unavailable(servable):
    gate = threading.Event()
    runner = RecordingRunner(servable, gate)
    batcher = Batcher(runner, BatchingOptions(max_batch_size=1, max_enqueued_batches=1, num_batch_threads=1))
    one_image = signature_run(servable, [IMAGES[0]])
    waiting = [threading.Thread(target=batcher, args=one_image) for _ in range(2)]
    try:
        waiting[0].start()  # taken by the only batch thread, which then waits at the gate
        assert runner.entered.wait(timeout=10)
        waiting[1].start()  # fills the queue of one batch
        deadline = time.monotonic() + 10
        while sum(len(q) for q in batcher._queues.values()) < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(ServingError) as caught:
            batcher(*one_image)
        assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    finally:
        gate.set()
        for thread in waiting:
            thread.join(timeout=60)
        batcher.close()
    assert runner.sizes == [1, 1]


def test_invalid_batching_parameters_are_rejected():
    with pytest.raises(ValueError, match="allowed_batch_sizes"):
        BatchingOptions(max_batch_size=8, allowed_batch_sizes=(4, 6)).check()


def test_server_with_batching_answers_like_without(tmp_path, exported_models):
    push(exported_models[1], str(tmp_path), MODEL, 1)
    server = start_server(serving_root=str(tmp_path), enable_batching=True,
                          batching_parameters_file=f"{REPO_ROOT}/serving/configs/batching_parameters.txt")
    try:
        with PredictionClient(f"{LOOPBACK}:{server.port}") as client:
            results = [None] * 8
            threads = [threading.Thread(target=lambda i=i: results.__setitem__(
                i, client.predict(IMAGES[i * 3:i * 3 + 3], MODEL))) for i in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            servable = Servable.load(MODEL, 1, exported_models[1])
            for i, result in enumerate(results):
                expected = direct(servable, IMAGES[i * 3:i * 3 + 3])[contract.PROBABILITIES_KEY]
                np.testing.assert_allclose([p.probabilities for p in result.predictions], expected, rtol=1e-5,
                                           atol=1e-6)
    finally:
        server.stop()
