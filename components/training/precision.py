"""Mixed precision as a Trainer hyper-parameter (Keras dtype policies).

'auto' picks mixed_float16 on a GPU (tensor cores), mixed_bfloat16 on a CPU whose
instruction set multiplies bfloat16 natively (AMX or AVX512-BF16, which oneDNN
uses), float32 otherwise. Variables stay float32 under either mixed policy, and
models keep their last layer in float32, so the exported signatures still return
float32 probabilities.
"""
import contextlib
from typing import Iterator

import keras
import tensorflow as tf
from absl import logging

from components.training.hparams import PRECISION_AUTO, PRECISION_FLOAT32, PRECISIONS

MIXED_FLOAT16 = "mixed_float16"
MIXED_BFLOAT16 = "mixed_bfloat16"
CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")
CPUINFO = "/proc/cpuinfo"


def cpu_flags(cpuinfo_path: str = CPUINFO) -> frozenset:
    """The first processor's feature flags (empty where /proc/cpuinfo is missing)."""
    try:
        with open(cpuinfo_path) as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def auto_policy(has_gpu: bool, flags: frozenset) -> str:
    if has_gpu:
        return MIXED_FLOAT16
    if any(flag in flags for flag in CPU_BF16_FLAGS):
        return MIXED_BFLOAT16
    return PRECISION_FLOAT32


def resolve(precision: str) -> str:
    """The Keras dtype policy name for a `precision` hyper-parameter."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != PRECISION_AUTO:
        return precision
    return auto_policy(bool(tf.config.list_logical_devices("GPU")), cpu_flags())


@contextlib.contextmanager
def policy_scope(precision: str) -> Iterator[str]:
    """Models built inside get the resolved dtype policy; the global one is restored after."""
    name = resolve(precision)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    if name != PRECISION_FLOAT32:
        logging.info("Building the model with Keras dtype policy %s", name)
    try:
        yield name
    finally:
        keras.config.set_dtype_policy(previous)
