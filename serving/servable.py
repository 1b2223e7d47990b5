"""One loaded version of one model, loaded the way TF Serving loads it: the
SavedModel's MetaGraph (by --saved_model_tags) in a TensorFlow session, run
by the tensor names its SignatureDefs give
(tensorflow_serving/servables/tensorflow/saved_model_bundle_factory.cc).

Running the graph by tensor names, not through TF2's typed functions, keeps
TF Serving's tolerance: a tensor whose shape the signature does not declare
is handed to the graph, which answers or fails with its own error.
"""
import dataclasses
import os
import re
from typing import Callable, Dict, Optional, Sequence

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2, meta_graph_pb2
from tensorflow.python.client import pywrap_tf_session
from tensorflow_serving.apis import get_model_metadata_pb2

from serving.errors import ServingError, invalid_argument

SAVED_MODEL_FILE = "saved_model.pb"
SERVE_TAG = "serve"
DEFAULT_SIGNATURE = "serving_default"

# tf.errors codes are the canonical gRPC codes, number for number.
_GRPC_CODE_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}
# What TensorFlow wraps around an op's own message: graph locations, node names.
_TF_MESSAGE_DECORATIONS = re.compile(
    r"Graph execution error:|Detected at node .*? defined at \(most recent call last\):|"
    r"<stack traces unavailable>|\{\{.*?\}\}|\[\[.*?\]\]|\[Op:[^\]]*\]", re.DOTALL)
_MAX_MESSAGE_CHARS = 400

# Runs the session: feeds (tensor name -> array) and fetches (tensor names) ->
# tensor name -> array; the deadline in milliseconds, or None.
SessionRunner = Callable[[Dict[str, np.ndarray], Sequence[str], Optional[int]], Dict[str, np.ndarray]]


def one_line_message(message: str) -> str:
    """TensorFlow's error text as one short line: the op's own words, no
    graph decorations, no newlines."""
    text = " ".join(_TF_MESSAGE_DECORATIONS.sub(" ", message).split())
    return text if len(text) <= _MAX_MESSAGE_CHARS else text[:_MAX_MESSAGE_CHARS] + "..."


def session_config(intra_op_threads: int = 0, inter_op_threads: int = 0, gpu_memory_fraction: float = 0.0,
                   base: Optional[config_pb2.ConfigProto] = None) -> config_pb2.ConfigProto:
    """TF Serving's session config: the file's ConfigProto, then the thread and
    GPU flags over it (tensorflow_serving/model_servers/server.cc)."""
    config = config_pb2.ConfigProto()
    if base is not None:
        config.CopyFrom(base)
    if intra_op_threads or inter_op_threads:
        config.intra_op_parallelism_threads = intra_op_threads
        config.inter_op_parallelism_threads = inter_op_threads
    config.gpu_options.per_process_gpu_memory_fraction = gpu_memory_fraction
    return config


@dataclasses.dataclass
class Servable:
    """A loaded model version. `runner` runs the session; server-side
    batching replaces it with a batching runner."""
    name: str
    version: int
    path: str
    signature_defs: Dict[str, meta_graph_pb2.SignatureDef]
    session: object
    runner: Optional[SessionRunner] = None

    @classmethod
    def load(cls, name: str, version: int, path: str, tags: Sequence[str] = (SERVE_TAG,),
             config: Optional[config_pb2.ConfigProto] = None) -> "Servable":
        graph = tf.Graph()
        session = tf.compat.v1.Session(graph=graph, config=config)
        try:
            with graph.as_default():
                meta_graph = tf.compat.v1.saved_model.loader.load(session, list(tags), path)
        except Exception:
            session.close()
            raise
        graph.finalize()
        servable = cls(name, version, path, dict(meta_graph.signature_def), session)
        servable.runner = servable.run_session
        return servable

    def run_session(self, feeds: Dict[str, np.ndarray], fetches: Sequence[str],
                    timeout_ms: Optional[int] = None) -> Dict[str, np.ndarray]:
        """Session::Run by tensor names (TensorFlow's own errors keep their code).
        The feed shapes are not checked against the graph's, as in C++."""
        graph = self.session.graph
        try:
            feed_outputs = {graph.get_tensor_by_name(name)._as_tf_output(): value  # pylint: disable=protected-access
                            for name, value in feeds.items()}
            fetch_outputs = [graph.get_tensor_by_name(name)._as_tf_output()  # pylint: disable=protected-access
                             for name in fetches]
        except (KeyError, ValueError) as error:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, str(error)) from None
        options = _run_options(timeout_ms)
        try:
            # The Python Session.run API checks feed shapes against the graph's
            # placeholders; TF Serving's C++ Session::Run does not, and neither does this.
            results = self.session._call_tf_sessionrun(  # pylint: disable=protected-access
                options, feed_outputs, fetch_outputs, [], None)
        except tf.errors.OpError as error:
            code = _GRPC_CODE_BY_NUMBER.get(error.error_code, grpc.StatusCode.INTERNAL)
            raise ServingError(code, one_line_message(error.message)) from None
        except UnicodeDecodeError as error:
            # TensorFlow failed to turn an op's message into text: the message
            # quotes request bytes, so the input is at fault.
            text = error.object.decode("utf-8", errors="backslashreplace")
            raise invalid_argument(one_line_message(text)) from None
        finally:
            if options is not None:
                pywrap_tf_session.TF_DeleteBuffer(options)
        return dict(zip(fetches, results))

    def run(self, feeds: Dict[str, np.ndarray], fetches: Sequence[str],
            timeout_ms: Optional[int] = None) -> Dict[str, np.ndarray]:
        return self.runner(feeds, fetches, timeout_ms)

    def signature_def_map(self) -> get_model_metadata_pb2.SignatureDefMap:
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, signature_def in self.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(signature_def)
        return signature_map


def _run_options(timeout_ms: Optional[int]):
    """RunOptions with the deadline, as the C API takes them; None without one."""
    if not timeout_ms:
        return None
    serialized = config_pb2.RunOptions(timeout_in_ms=timeout_ms).SerializeToString()
    return pywrap_tf_session.TF_NewBufferFromString(serialized)


def has_saved_model(version_dir: str) -> bool:
    return os.path.isfile(os.path.join(version_dir, SAVED_MODEL_FILE))

