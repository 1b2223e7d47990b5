"""One loaded version of one model: the SavedModel's MetaGraph chosen by
--saved_model_tags, its SignatureDefs as saved_model.pb holds them, and its
signature functions.

TF Serving feeds a signature's tensors by name to a session
(tensorflow_serving/servables/tensorflow/predict_util.cc): the shapes a
signature declares are not checked, the graph answers or fails with its own
error. Here a TF1 SavedModel (no object graph) is run the same way, in a
session by tensor names. A TF2 SavedModel is loaded by its object graph
(TF1's loader cannot restore Keras 3 variables) and its signature functions
are called on their flat arguments, which skips their typed shape check and
keeps TF Serving's tolerance; inputs go in by alias, sorted, the flat order
of a signature function's keyword arguments.
"""
import dataclasses
import os
import re
from typing import Callable, Dict, Optional, Sequence, Tuple

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
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

# Runs one signature: (signature name, alias -> array, output aliases) -> alias -> array.
SignatureRunner = Callable[[str, Dict[str, np.ndarray], Sequence[str]], Dict[str, np.ndarray]]


def one_line_message(message: str) -> str:
    """TensorFlow's error text as one short line: the op's own words, no
    graph decorations, no newlines."""
    text = " ".join(_TF_MESSAGE_DECORATIONS.sub(" ", message).split())
    return text if len(text) <= _MAX_MESSAGE_CHARS else text[:_MAX_MESSAGE_CHARS] + "..."


def read_signature_defs(saved_model_dir: str, tags: Sequence[str] = (SERVE_TAG,)
                        ) -> Tuple[Dict[str, meta_graph_pb2.SignatureDef], bool]:
    """The SignatureDefs of the MetaGraph with exactly these tags, every one
    (TF Serving's metadata lists TF2's __saved_model_init_op too), and
    whether it has a TF2 object graph."""
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(saved_model_dir, SAVED_MODEL_FILE), "rb") as model_file:
        saved_model.ParseFromString(model_file.read())
    for meta_graph in saved_model.meta_graphs:
        if set(meta_graph.meta_info_def.tags) == set(tags):
            return dict(meta_graph.signature_def), bool(meta_graph.object_graph_def.nodes)
    raise ValueError(f"{saved_model_dir}: no MetaGraph tagged {{{', '.join(tags)}}}")


def has_saved_model(version_dir: str) -> bool:
    return os.path.isfile(os.path.join(version_dir, SAVED_MODEL_FILE))


@dataclasses.dataclass
class Servable:
    """A loaded model version. `runner` runs a signature; server-side
    batching replaces it with a batching runner."""
    name: str
    version: int
    path: str
    signature_defs: Dict[str, meta_graph_pb2.SignatureDef]
    loaded: object
    runner: Optional[SignatureRunner] = None

    @classmethod
    def load(cls, name: str, version: int, path: str, tags: Sequence[str] = (SERVE_TAG,)) -> "Servable":
        signature_defs, object_graph = read_signature_defs(path, tags)
        if object_graph:
            loaded = tf.saved_model.load(path, tags=list(tags))
        else:
            loaded = tf.compat.v1.Session(graph=tf.Graph())
            with loaded.graph.as_default():
                tf.compat.v1.saved_model.loader.load(loaded, list(tags), path)
        servable = cls(name, version, path, signature_defs, loaded)
        servable.runner = servable.run_signature
        return servable

    def _run_function(self, signature_name: str, inputs: Dict[str, np.ndarray],
                      output_aliases: Sequence[str]) -> Dict[str, np.ndarray]:
        function = self.loaded.signatures.get(signature_name)
        if function is None:
            raise ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                               f'Serving signature key "{signature_name}" cannot be run.')
        aliases = sorted(function.structured_input_signature[1])
        arguments = [tf.convert_to_tensor(inputs[alias]) for alias in aliases]
        outputs = function._call_flat(arguments, function.captured_inputs)  # pylint: disable=protected-access
        return {alias: outputs[alias].numpy() for alias in output_aliases}

    def _run_session(self, signature_name: str, inputs: Dict[str, np.ndarray],
                     output_aliases: Sequence[str]) -> Dict[str, np.ndarray]:
        """Session::Run by the signature's tensor names. Python's Session.run
        would check feed shapes against the placeholders; C++ does not, nor this."""
        signature_def, graph = self.signature_defs[signature_name], self.loaded.graph
        feeds = {graph.get_tensor_by_name(signature_def.inputs[alias].name)._as_tf_output(): value  # pylint: disable=protected-access
                 for alias, value in inputs.items()}
        fetches = [graph.get_tensor_by_name(signature_def.outputs[alias].name)._as_tf_output()  # pylint: disable=protected-access
                   for alias in output_aliases]
        results = self.loaded._call_tf_sessionrun(None, feeds, fetches, [], None)  # pylint: disable=protected-access
        return dict(zip(output_aliases, results))

    def run_signature(self, signature_name: str, inputs: Dict[str, np.ndarray],
                      output_aliases: Sequence[str]) -> Dict[str, np.ndarray]:
        """The signature on these inputs; TensorFlow's errors keep their code."""
        run = self._run_session if isinstance(self.loaded, tf.compat.v1.Session) else self._run_function
        try:
            return run(signature_name, inputs, output_aliases)
        except tf.errors.OpError as error:
            code = _GRPC_CODE_BY_NUMBER.get(error.error_code, grpc.StatusCode.INTERNAL)
            raise ServingError(code, one_line_message(error.message)) from None
        except UnicodeDecodeError as error:
            # TensorFlow failed to turn an op's message into text: the message
            # quotes request bytes, so the input is at fault.
            text = error.object.decode("utf-8", errors="backslashreplace")
            raise invalid_argument(one_line_message(text)) from None
        except (TypeError, ValueError) as error:  # a value TensorFlow cannot take as a tensor
            raise invalid_argument(one_line_message(str(error))) from None

    def run(self, signature_name: str, inputs: Dict[str, np.ndarray],
            output_aliases: Sequence[str]) -> Dict[str, np.ndarray]:
        return self.runner(signature_name, inputs, output_aliases)

    def signature_def_map(self) -> get_model_metadata_pb2.SignatureDefMap:
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, signature_def in self.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(signature_def)
        return signature_map
