"""Beam's PortableRunner arguments that the tests run the data components with."""
from typing import Tuple


def portable_beam_args(job_endpoint: str, worker_pool: str) -> Tuple[str, ...]:
    """Beam's PortableRunner: the job goes to a Beam job server (Flink's on a
    cluster, Beam's local job service in the tests) at job_endpoint (HOST:PORT),
    which runs it with the SDK workers of an EXTERNAL worker pool at worker_pool
    (HOST:PORT: the project's image running apache_beam.runners.worker.worker_pool_main,
    beside each Flink task manager)."""
    return ("--runner=PortableRunner", f"--job_endpoint={job_endpoint}",
            "--environment_type=EXTERNAL", f"--environment_config={worker_pool}")
