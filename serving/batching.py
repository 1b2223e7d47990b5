"""Server-side batching of concurrent requests, as TF Serving's
--enable_batching does: requests for the same model version, signature and
outputs wait up to batch_timeout_micros in a queue, are concatenated along the batch
dimension into one call of at most max_batch_size rows (padded up to the next
allowed_batch_sizes entry when given), and each caller gets its own slice back.
"""
import collections
import dataclasses
import threading
import time
from concurrent import futures
from typing import Dict, List, Sequence

import grpc
import numpy as np

from serving.config_protos import BatchingParameters, read_text_proto
from serving.errors import ServingError
from serving.servable import SignatureRunner


@dataclasses.dataclass(frozen=True)
class BatchingOptions:
    """TF Serving's BatchingParameters, with its defaults for unset fields."""
    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = 2
    allowed_batch_sizes: tuple = ()

    @classmethod
    def from_proto(cls, proto) -> "BatchingOptions":
        defaults = cls()

        def value(field):
            return getattr(proto, field).value if proto.HasField(field) else getattr(defaults, field)

        options = cls(
            max_batch_size=value("max_batch_size"),
            batch_timeout_micros=value("batch_timeout_micros"),
            max_enqueued_batches=value("max_enqueued_batches"),
            num_batch_threads=value("num_batch_threads"),
            allowed_batch_sizes=tuple(proto.allowed_batch_sizes))
        options.check()
        return options

    @classmethod
    def from_file(cls, path: str) -> "BatchingOptions":
        try:
            return cls.from_proto(read_text_proto(path, BatchingParameters))
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None

    def check(self) -> None:
        if self.max_batch_size < 1 or self.num_batch_threads < 1 or self.max_enqueued_batches < 1:
            raise ValueError("max_batch_size, num_batch_threads and max_enqueued_batches must be >= 1")
        sizes = list(self.allowed_batch_sizes)
        if sizes and (sizes != sorted(sizes) or sizes[-1] != self.max_batch_size):
            raise ValueError("allowed_batch_sizes must increase and end with max_batch_size")


@dataclasses.dataclass
class _Task:
    queue_key: tuple
    signature_name: str
    outputs: tuple
    inputs: Dict[str, np.ndarray]
    size: int
    future: futures.Future


class Batcher:
    """Batches calls of one servable's runner; one queue per signature,
    outputs and row shape."""

    def __init__(self, runner: SignatureRunner, options: BatchingOptions):
        self._runner = runner
        self._options = options
        self._queues: Dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self._condition = threading.Condition()
        self._closed = False
        self._threads = [threading.Thread(target=self._work, daemon=True, name="batcher")
                         for _ in range(options.num_batch_threads)]
        for thread in self._threads:
            thread.start()

    def __call__(self, signature_name: str, inputs: Dict[str, np.ndarray],
                 output_aliases: Sequence[str]) -> Dict[str, np.ndarray]:
        outputs = tuple(output_aliases)
        sizes = {array.shape[0] if array.ndim else -1 for array in inputs.values()}
        size = sizes.pop() if len(sizes) == 1 else -1
        # Requests that cannot join a batch (no common batch dimension, empty,
        # larger than a batch) run on their own, exactly as without batching.
        if size < 1 or size > self._options.max_batch_size:
            return self._runner(signature_name, inputs, outputs)
        # Only requests whose rows can be concatenated share a queue.
        queue_key = (signature_name, outputs) + tuple(
            (alias, array.shape[1:], array.dtype.str) for alias, array in sorted(inputs.items()))
        task = _Task(queue_key, signature_name, outputs, inputs, size, futures.Future())
        with self._condition:
            if self._closed:
                run_alone = True
            else:
                run_alone = False
                queue = self._queues[queue_key]
                queued_rows = sum(t.size for t in queue)
                if queued_rows + size > self._options.max_batch_size * self._options.max_enqueued_batches:
                    raise ServingError(grpc.StatusCode.UNAVAILABLE,
                                       "The batch scheduling queue to which this task was submitted is full")
                queue.append(task)
                self._condition.notify()
        if run_alone:
            return self._runner(signature_name, inputs, outputs)
        return task.future.result()

    def close(self) -> None:
        """Stops taking tasks; queued ones are still run."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        for thread in self._threads:
            thread.join()

    def _take_batch(self) -> List[_Task]:
        timeout = self._options.batch_timeout_micros / 1e6
        with self._condition:
            while True:
                ready = [q for q in self._queues.values() if q]
                if ready:
                    break
                if self._closed:
                    return []
                self._condition.wait()
            queue = ready[0]
            deadline = time.monotonic() + timeout
            while (sum(t.size for t in queue) < self._options.max_batch_size
                   and not self._closed and time.monotonic() < deadline):
                self._condition.wait(deadline - time.monotonic())
            batch, rows = [], 0
            while queue and rows + queue[0].size <= self._options.max_batch_size:
                task = queue.popleft()
                batch.append(task)
                rows += task.size
            return batch

    def _padded_size(self, rows: int) -> int:
        return next((size for size in self._options.allowed_batch_sizes if size >= rows), rows)

    def _work(self) -> None:
        while True:
            batch = self._take_batch()
            if not batch:
                return
            self._run_batch(batch)

    def _run_batch(self, batch: List[_Task]) -> None:
        rows = sum(task.size for task in batch)
        padding = self._padded_size(rows) - rows
        try:
            inputs = {}
            for alias in batch[0].inputs:
                parts = [task.inputs[alias] for task in batch]
                if padding:
                    parts.append(np.repeat(parts[0][:1], padding, axis=0))
                inputs[alias] = np.concatenate(parts, axis=0)
            outputs = self._runner(batch[0].signature_name, inputs, batch[0].outputs)
            for alias, value in outputs.items():
                if value.ndim == 0 or value.shape[0] != rows + padding:
                    raise ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                                       f"Batched output '{alias}' has shape {list(value.shape)}; "
                                       f"batching needs a leading batch dimension of {rows + padding}")
        except Exception as error:
            if len(batch) > 1:
                # One request's bad data must not fail the others: run each alone.
                for task in batch:
                    self._run_batch([task])
                return
            batch[0].future.set_exception(error)
            return
        start = 0
        for task in batch:
            task.future.set_result({alias: value[start:start + task.size]
                                    for alias, value in outputs.items()})
            start += task.size
