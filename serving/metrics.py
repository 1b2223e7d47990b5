"""Request counters and latency histograms, exported in Prometheus' text
format on the REST port when a monitoring config enables it (TF Serving's
--monitoring_config_file), under TF Serving's metric names.

Hand-written, not prometheus_client: its text exposition appends `_total` to
every counter, and dashboards built for TF Serving read
`:tensorflow:serving:request_count` as TF Serving names it (the package is also
in neither requirements.lock nor the TFX base image)."""
import bisect
import collections
import contextlib
import dataclasses
import threading
import time

import grpc

# Latency bucket upper bounds in microseconds (TF Serving reports microseconds).
LATENCY_BUCKETS_US = (500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000,
                      500_000, 1_000_000, 2_000_000, 5_000_000)
REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"


@dataclasses.dataclass
class Outcome:
    code: grpc.StatusCode = grpc.StatusCode.OK


class Metrics:
    def __init__(self):
        self._lock = threading.Lock()
        self._counts = collections.Counter()
        self._latency = collections.defaultdict(lambda: [0] * (len(LATENCY_BUCKETS_US) + 1))
        self._latency_sum = collections.Counter()

    @contextlib.contextmanager
    def track(self, api: str, model_name: str, entrypoint: str):
        """Counts the request under the outcome's code (set it on failure)."""
        outcome = Outcome()
        start = time.perf_counter()
        try:
            yield outcome
        finally:
            micros = (time.perf_counter() - start) * 1e6
            key = (model_name, api, entrypoint)
            with self._lock:
                self._counts[key + (outcome.code.name,)] += 1
                self._latency[key][bisect.bisect_left(LATENCY_BUCKETS_US, micros)] += 1
                self._latency_sum[key] += micros

    def count(self, model_name: str, api: str, entrypoint: str, status: str) -> int:
        with self._lock:
            return self._counts[(model_name, api, entrypoint, status)]

    def prometheus_text(self) -> str:
        lines = [f"# TYPE {REQUEST_COUNT} counter"]
        with self._lock:
            for (model, api, entrypoint, status), count in sorted(self._counts.items()):
                lines.append(f'{REQUEST_COUNT}{{model_name="{model}",API="{api}",'
                             f'entrypoint="{entrypoint}",status="{status}"}} {count}')
            lines.append(f"# TYPE {REQUEST_LATENCY} histogram")
            for (model, api, entrypoint), buckets in sorted(self._latency.items()):
                labels = f'model_name="{model}",API="{api}",entrypoint="{entrypoint}"'
                cumulative = 0
                for bound, count in zip(LATENCY_BUCKETS_US + (float("inf"),), buckets):
                    cumulative += count
                    le = "+Inf" if bound == float("inf") else str(bound)
                    lines.append(f'{REQUEST_LATENCY}_bucket{{{labels},le="{le}"}} {cumulative}')
                lines.append(f"{REQUEST_LATENCY}_sum{{{labels}}} {self._latency_sum[(model, api, entrypoint)]:.0f}")
                lines.append(f"{REQUEST_LATENCY}_count{{{labels}}} {cumulative}")
        return "\n".join(lines) + "\n"
