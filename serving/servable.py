"""One loaded version of one model: a SavedModel, its signatures, and the
Predict / Classify / metadata logic of TF Serving applied to it.

Requests arrive as tensorflow_serving protos and leave as protos; every
problem with a request becomes a ServingError with TF Serving's status code.
"""
import dataclasses
import os
import re
from typing import Callable, Dict, Iterable, Mapping, Optional

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
from tensorflow_serving.apis import classification_pb2, get_model_metadata_pb2, predict_pb2

from components import contract
from serving.errors import ServingError, invalid_argument
from serving.image_header import DEFAULT_MAX_IMAGE_PIXELS, size_problem

SAVED_MODEL_FILE = "saved_model.pb"
SERVE_TAG = "serve"
CLASSIFY_METHOD = "tensorflow/serving/classify"
CLASSIFY_INPUTS = "inputs"
CLASSIFY_OUTPUT_CLASSES = "classes"
CLASSIFY_OUTPUT_SCORES = "scores"
# TensorFlow's internal init signature; TF Serving hides it from metadata.
_INIT_OP_SIGNATURE = "__saved_model_init_op"

# tf.errors codes are the canonical gRPC codes, number for number.
_GRPC_CODE_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}

# Runs one signature on a batch: alias -> array in, alias -> array out.
SignatureRunner = Callable[[str, Dict[str, np.ndarray]], Dict[str, np.ndarray]]
# What TensorFlow wraps around an op's own message: graph locations, node names.
_TF_MESSAGE_DECORATIONS = re.compile(
    r"Graph execution error:|Detected at node .*? defined at \(most recent call last\):|"
    r"<stack traces unavailable>|\{\{.*?\}\}|\[\[.*?\]\]|\[Op:[^\]]*\]", re.DOTALL)
_MAX_MESSAGE_CHARS = 400


def one_line_message(message: str) -> str:
    """TensorFlow's error text as one short line: the op's own words, no
    graph decorations, no newlines."""
    text = " ".join(_TF_MESSAGE_DECORATIONS.sub(" ", message).split())
    return text if len(text) <= _MAX_MESSAGE_CHARS else text[:_MAX_MESSAGE_CHARS] + "..."


def _dtype_name(dtype_enum: int) -> str:
    return types_pb2.DataType.Name(dtype_enum)


def _shape_of(tensor_info: meta_graph_pb2.TensorInfo):
    shape = tensor_info.tensor_shape
    if shape.unknown_rank:
        return None
    return [dim.size for dim in shape.dim]


def read_signature_defs(saved_model_dir: str) -> Dict[str, meta_graph_pb2.SignatureDef]:
    """The SignatureDefs of the 'serve' MetaGraph, as TF Serving reports them."""
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(saved_model_dir, SAVED_MODEL_FILE), "rb") as model_file:
        saved_model.ParseFromString(model_file.read())
    for meta_graph in saved_model.meta_graphs:
        if SERVE_TAG in meta_graph.meta_info_def.tags:
            return {key: value for key, value in meta_graph.signature_def.items()
                    if key != _INIT_OP_SIGNATURE}
    raise ValueError(f"{saved_model_dir}: no MetaGraph tagged '{SERVE_TAG}'")


@dataclasses.dataclass
class Servable:
    """A loaded model version. `runner` is replaced by a batching runner when
    server-side batching is on; requests always go through it."""
    name: str
    version: int
    path: str
    signature_defs: Dict[str, meta_graph_pb2.SignatureDef]
    loaded: object
    runner: Optional[SignatureRunner] = None
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS

    @classmethod
    def load(cls, name: str, version: int, path: str,
             max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> "Servable":
        signature_defs = read_signature_defs(path)
        loaded = tf.saved_model.load(path, tags=[SERVE_TAG])
        servable = cls(name, version, path, signature_defs, loaded, max_image_pixels=max_image_pixels)
        servable.runner = servable.run_signature
        return servable

    # --- running signatures -------------------------------------------------

    def signature(self, signature_name: str) -> meta_graph_pb2.SignatureDef:
        key = signature_name or contract.SERVING_SIGNATURE
        if key not in self.signature_defs or key not in self.loaded.signatures:
            raise ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                               f'Serving signature key "{key}" not found.')
        return self.signature_defs[key]

    def run_signature(self, signature_name: str, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Calls the signature's function; TensorFlow errors keep their code."""
        function = self.loaded.signatures[signature_name or contract.SERVING_SIGNATURE]
        try:
            outputs = function(**{alias: tf.constant(value) for alias, value in inputs.items()})
        except tf.errors.OpError as error:
            code = _GRPC_CODE_BY_NUMBER.get(error.error_code, grpc.StatusCode.INTERNAL)
            raise ServingError(code, one_line_message(error.message)) from None
        except UnicodeDecodeError as error:
            # TensorFlow failed to turn an op's message into text: the message
            # quotes request bytes (an image where a tf.Example was expected,
            # an in-graph check printing the bytes it rejected), so the input is at fault.
            text = error.object.decode("utf-8", errors="backslashreplace")
            raise invalid_argument(one_line_message(text)) from None
        return {alias: tensor.numpy() for alias, tensor in outputs.items()}

    # --- images: judged from their headers before TensorFlow decodes them -----

    def check_images(self, where: str, images: Iterable[bytes]) -> None:
        for index, data in enumerate(images):
            problem = size_problem(data, self.max_image_pixels)
            if problem:
                raise invalid_argument(f"{where}[{index}]: {problem}")

    def check_examples(self, where: str, serialized: Iterable[bytes]) -> None:
        """Each value must be a tf.Example; its contract image is checked like image bytes."""
        for index, data in enumerate(serialized):
            example = tf.train.Example()
            try:
                example.ParseFromString(data)
            except DecodeError:
                raise invalid_argument(f"{where}[{index}]: not a serialized tf.Example") from None
            feature = example.features.feature.get(contract.IMAGE_KEY)
            if feature is not None:
                self.check_images(f"{where}[{index}].{contract.IMAGE_KEY}", feature.bytes_list.value)

    def _check_inputs(self, arrays: Dict[str, np.ndarray]) -> None:
        for alias, array in arrays.items():
            if array.dtype != object:
                continue
            if alias == contract.SERVING_INPUT_KEY:
                self.check_images(alias, array.flat)
            elif alias == contract.EXAMPLES_INPUT_KEY:
                self.check_examples(alias, array.flat)

    # --- Predict ------------------------------------------------------------

    def validate_inputs(self, signature_def, tensors: Mapping[str, object]) -> Dict[str, np.ndarray]:
        """TensorProtos -> arrays, checked against the signature (names, dtype, shape)."""
        expected = signature_def.inputs
        extra = sorted(set(tensors) - set(expected))
        if extra:
            raise invalid_argument(
                f"input tensor alias not found in signature: {', '.join(extra)}. "
                f"Inputs expected to be in the set {{{', '.join(sorted(expected))}}}.")
        missing = sorted(set(expected) - set(tensors))
        if missing:
            raise invalid_argument(
                f"Request inputs do not match required inputs for model `{self.name}`. "
                f"Missing but required: {{{', '.join(missing)}}}.")
        arrays = {}
        for alias, tensor_proto in tensors.items():
            tensor_info = expected[alias]
            if tensor_proto.dtype != tensor_info.dtype:
                raise invalid_argument(
                    f"input '{alias}' has dtype {_dtype_name(tensor_proto.dtype)}, the signature "
                    f"expects {_dtype_name(tensor_info.dtype)}")
            try:
                array = tf.make_ndarray(tensor_proto)
            except Exception as error:  # any malformed TensorProto is the caller's fault
                raise invalid_argument(f"input '{alias}' is not a valid TensorProto: {error}") from None
            expected_shape = _shape_of(tensor_info)
            if expected_shape is not None and (
                    len(expected_shape) != array.ndim
                    or any(want not in (-1, got) for want, got in zip(expected_shape, array.shape))):
                raise invalid_argument(
                    f"input '{alias}' has shape {list(array.shape)}, the signature expects "
                    f"{expected_shape} (-1: any size)")
            arrays[alias] = array
        return arrays

    def predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        signature_name = request.model_spec.signature_name or contract.SERVING_SIGNATURE
        signature_def = self.signature(signature_name)
        unknown_outputs = sorted(set(request.output_filter) - set(signature_def.outputs))
        if unknown_outputs:
            raise invalid_argument(
                f"output tensor alias not found in signature: {', '.join(unknown_outputs)}")
        inputs = self.validate_inputs(signature_def, request.inputs)
        self._check_inputs(inputs)
        outputs = self.runner(signature_name, inputs)
        response = predict_pb2.PredictResponse()
        self.fill_model_spec(response.model_spec, signature_name)
        wanted = set(request.output_filter) or set(outputs)
        for alias, value in outputs.items():
            if alias in wanted:
                response.outputs[alias].CopyFrom(tf.make_tensor_proto(value))
        return response

    # --- Classify -----------------------------------------------------------

    def classify(self, request: classification_pb2.ClassificationRequest
                 ) -> classification_pb2.ClassificationResponse:
        """TF Serving's Classify: a signature of method 'classify' fed serialized
        tf.Examples through 'inputs', answering 'classes' and/or 'scores'."""
        signature_name = request.model_spec.signature_name or contract.SERVING_SIGNATURE
        signature_def = self.signature(signature_name)
        if signature_def.method_name != CLASSIFY_METHOD:
            raise invalid_argument(
                f"Expected classification signature method_name to be {CLASSIFY_METHOD}. "
                f"Was: {signature_def.method_name}")
        if CLASSIFY_INPUTS not in signature_def.inputs:
            raise invalid_argument(f"No classification inputs found in SignatureDef: {signature_name}")
        if not ({CLASSIFY_OUTPUT_CLASSES, CLASSIFY_OUTPUT_SCORES} & set(signature_def.outputs)):
            raise invalid_argument(f"Expected classification signature outputs to contain at least "
                                   f"one of '{CLASSIFY_OUTPUT_CLASSES}', '{CLASSIFY_OUTPUT_SCORES}'")
        serialized = serialize_examples(request.input)
        self.check_examples(CLASSIFY_INPUTS, serialized)
        outputs = self.runner(signature_name, {CLASSIFY_INPUTS: np.array(serialized, dtype=object)})
        classes = outputs.get(CLASSIFY_OUTPUT_CLASSES)
        scores = outputs.get(CLASSIFY_OUTPUT_SCORES)
        response = classification_pb2.ClassificationResponse()
        self.fill_model_spec(response.model_spec, signature_name)
        for row in range(len(serialized)):
            classifications = response.result.classifications.add()
            count = (classes if classes is not None else scores).shape[1]
            for column in range(count):
                entry = classifications.classes.add()
                if classes is not None:
                    entry.label = classes[row, column].decode("utf-8")
                if scores is not None:
                    entry.score = float(scores[row, column])
        return response

    # --- metadata -----------------------------------------------------------

    def signature_def_map(self) -> get_model_metadata_pb2.SignatureDefMap:
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, signature_def in self.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(signature_def)
        return signature_map

    def fill_model_spec(self, model_spec, signature_name: str = "") -> None:
        model_spec.name = self.name
        model_spec.version.value = self.version
        if signature_name:
            model_spec.signature_name = signature_name


def serialize_examples(model_input) -> list:
    """tensorflow.serving.Input -> serialized tf.Examples (context merged in, as TF Serving does)."""
    kind = model_input.WhichOneof("kind")
    if kind == "example_list":
        examples = list(model_input.example_list.examples)
    elif kind == "example_list_with_context":
        context = model_input.example_list_with_context.context
        examples = []
        for example in model_input.example_list_with_context.examples:
            merged = tf.train.Example()
            merged.CopyFrom(context)
            merged.MergeFrom(example)
            examples.append(merged)
    else:
        raise invalid_argument("Input is empty.")
    if not examples:
        raise invalid_argument("Input is empty.")
    return [example.SerializeToString() for example in examples]
