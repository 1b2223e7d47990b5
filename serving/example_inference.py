"""Classify, Regress and MultiInference on one servable, by TF Serving's
rules: serialized tf.Examples fed to the signature's one input, the outputs
checked and turned into results
(tensorflow_serving/servables/tensorflow/classifier.cc, regressor.cc,
multi_inference.cc, and util.cc for the examples tensor).

Without --enable_signature_method_name_check any signature of the right
shape answers (TF2 exports all carry the predict method name); with it, the
signature's method must be classify / regress.
"""
from typing import Dict, List

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    inference_pb2,
    regression_pb2,
)

from serving import input_checks
from serving.errors import ServingError, invalid_argument
from serving.predict import CLASSIFY_METHOD, REGRESS_METHOD
from serving.request_options import RequestOptions
from serving.servable import DEFAULT_SIGNATURE, Servable

# Classification and regression signatures both take their examples as "inputs".
CLASSIFY_INPUTS = "inputs"
CLASSIFY_OUTPUT_CLASSES = "classes"
CLASSIFY_OUTPUT_SCORES = "scores"
REGRESS_INPUTS = "inputs"
REGRESS_OUTPUTS = "outputs"


def _debug(signature_def) -> str:
    return text_format.MessageToString(signature_def, as_one_line=True)


def serialized_examples(model_input) -> List[bytes]:
    """tensorflow.serving.Input -> serialized tf.Examples; with a context,
    its bytes come first in each (protobuf merges them: the example wins)."""
    kind = model_input.WhichOneof("kind")
    if kind == "example_list":
        examples = [example.SerializeToString() for example in model_input.example_list.examples]
    elif kind == "example_list_with_context":
        context = model_input.example_list_with_context.context.SerializeToString()
        examples = [context + example.SerializeToString()
                    for example in model_input.example_list_with_context.examples]
    else:
        examples = []
    if not examples:
        raise invalid_argument("Input is empty.")
    return examples


def _signature(servable: Servable, signature_name: str):
    name = signature_name or DEFAULT_SIGNATURE
    signature_def = servable.signature_defs.get(name)
    if signature_def is None:
        raise invalid_argument(f"No signature was found with the name: {name}")
    return name, signature_def


def _check_method_and_one_input(signature_def, kind: str, method_name: str, options: RequestOptions) -> None:
    """What PreProcessClassification and PreProcessRegression check first, in their words."""
    if options.method_name_check and signature_def.method_name != method_name:
        raise invalid_argument(f"Expected {kind} signature method_name to be {method_name}. "
                               f"Was: {signature_def.method_name}")
    if len(signature_def.inputs) != 1:
        raise invalid_argument("Expected one input Tensor.")


def classification_outputs(signature_def, options: RequestOptions) -> List[str]:
    """PreProcessClassification: the output aliases to fetch."""
    _check_method_and_one_input(signature_def, "classification", CLASSIFY_METHOD, options)
    if len(signature_def.outputs) not in (1, 2):
        raise invalid_argument(f"Expected one or two output Tensors, found {len(signature_def.outputs)}")
    if CLASSIFY_INPUTS not in signature_def.inputs:
        raise invalid_argument(f"No classification inputs found in SignatureDef: {_debug(signature_def)}")
    outputs = [key for key in (CLASSIFY_OUTPUT_CLASSES, CLASSIFY_OUTPUT_SCORES) if key in signature_def.outputs]
    if not outputs:
        raise invalid_argument(
            f'Expected classification signature outputs to contain at least one of "{CLASSIFY_OUTPUT_CLASSES}" '
            f'or "{CLASSIFY_OUTPUT_SCORES}". Signature was: {_debug(signature_def)}')
    return outputs


def regression_outputs(signature_def, options: RequestOptions) -> List[str]:
    """PreProcessRegression: the output aliases to fetch."""
    _check_method_and_one_input(signature_def, "regression", REGRESS_METHOD, options)
    if len(signature_def.outputs) != 1:
        raise invalid_argument("Expected one output Tensor.")
    if REGRESS_INPUTS not in signature_def.inputs:
        raise invalid_argument(f"No regression inputs found in SignatureDef: {_debug(signature_def)}")
    if REGRESS_OUTPUTS not in signature_def.outputs:
        raise invalid_argument(f"No regression outputs found in SignatureDef: {_debug(signature_def)}")
    return [REGRESS_OUTPUTS]


def _shape_text(array: np.ndarray) -> str:
    return "[" + ",".join(str(size) for size in array.shape) + "]"


def _checked_matrix(array: np.ndarray, what: str, dtype_name: str, dtype_ok: bool, count: int) -> np.ndarray:
    if array.ndim != 2:
        raise invalid_argument(f"Expected Tensor shape: [batch_size num_classes] but got {_shape_text(array)}")
    if not dtype_ok:
        raise invalid_argument(f"Expected {what} Tensor of {dtype_name}. Got: {_dtype_name(array)}")
    if array.shape[0] != count:
        raise invalid_argument(f"Expected {what} output batch size of {count}. Got: {array.shape[0]}")
    return array


def _dtype_name(array: np.ndarray) -> str:
    if array.dtype == object:
        return "DT_STRING"
    return types_pb2.DataType.Name(tf.dtypes.as_dtype(array.dtype).as_datatype_enum)


def classification_result(signature_def, count: int, results: Dict[str, np.ndarray],
                          result: classification_pb2.ClassificationResult) -> None:
    """PostProcessClassificationResult."""
    classes = scores = None
    if CLASSIFY_OUTPUT_CLASSES in signature_def.outputs:
        classes = results[CLASSIFY_OUTPUT_CLASSES]
        classes = _checked_matrix(classes, "classes", "DT_STRING", classes.dtype == object, count)
    if CLASSIFY_OUTPUT_SCORES in signature_def.outputs:
        scores = results[CLASSIFY_OUTPUT_SCORES]
        scores = _checked_matrix(scores, "scores", "DT_FLOAT", scores.dtype == np.float32, count)
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise invalid_argument(f"Tensors class and score should match in dim_size(1). "
                               f"Got {classes.shape[1]} vs. {scores.shape[1]}")
    width = (classes if classes is not None else scores).shape[1]
    for row in range(count):
        classifications = result.classifications.add()
        for column in range(width):
            entry = classifications.classes.add()
            if classes is not None:
                entry.label = classes[row, column].decode("utf-8", errors="replace")
            if scores is not None:
                entry.score = float(scores[row, column])


def regression_result(signature_def, count: int, results: Dict[str, np.ndarray],
                      result: regression_pb2.RegressionResult) -> None:
    """PostProcessRegressionResult."""
    output = results[REGRESS_OUTPUTS]
    if not (output.ndim == 1 or (output.ndim == 2 and output.shape[1] == 1)):
        raise invalid_argument("Expected output Tensor shape to be either [batch_size] or [batch_size, 1] "
                               f"but got {_shape_text(output)}")
    if output.shape[0] != count:
        raise invalid_argument(f"Input batch size did not match output batch size: {count} vs. {output.shape[0]}")
    if output.dtype != np.float32:
        raise invalid_argument(f"Expected output Tensor of DT_FLOAT.  Got: {_dtype_name(output)}")
    for value in output.ravel():
        result.regressions.add(value=float(value))


def _examples(model_input, options: RequestOptions) -> np.ndarray:
    """InputToSerializedExampleTensor, after this server's image checks."""
    examples = serialized_examples(model_input)
    input_checks.check_examples(CLASSIFY_INPUTS, examples, options.max_image_pixels)
    return np.array(examples, dtype=object)


def _fill_model_spec(model_spec, name: str, signature_name: str, version: int) -> None:
    model_spec.name = name
    model_spec.signature_name = signature_name or DEFAULT_SIGNATURE
    model_spec.version.value = version


def _answer(servable: Servable, request, options: RequestOptions, outputs_of, fill_result, response):
    """One signature on the request's examples: check it, run it, fill the response."""
    signature_name, signature_def = _signature(servable, request.model_spec.signature_name)
    outputs = outputs_of(signature_def, options)
    examples = _examples(request.input, options)
    results = servable.run(signature_name, {CLASSIFY_INPUTS: examples}, outputs)
    _fill_model_spec(response.model_spec, request.model_spec.name, signature_name, servable.version)
    fill_result(signature_def, len(examples), results, response.result)
    return response


def classify(servable: Servable, request: classification_pb2.ClassificationRequest,
             options: RequestOptions) -> classification_pb2.ClassificationResponse:
    return _answer(servable, request, options, classification_outputs, classification_result,
                   classification_pb2.ClassificationResponse())


def regress(servable: Servable, request: regression_pb2.RegressionRequest,
            options: RequestOptions) -> regression_pb2.RegressionResponse:
    return _answer(servable, request, options, regression_outputs, regression_result,
                   regression_pb2.RegressionResponse())


def check_multi_inference_tasks(request: inference_pb2.MultiInferenceRequest) -> None:
    """The tasks must name one model (multi_inference.cc)."""
    model_name = ""
    for task in request.tasks:
        if not task.model_spec.name:
            raise invalid_argument("Found ModelSpec with an empty model name.")
        if model_name and task.model_spec.name != model_name:
            raise invalid_argument("All ModelSpecs in a MultiInferenceRequest must access the same model name.")
        model_name = task.model_spec.name


def multi_inference(servable: Servable, request: inference_pb2.MultiInferenceRequest,
                    options: RequestOptions) -> inference_pb2.MultiInferenceResponse:
    """Several classify / regress signatures of one model on the same examples.
    TF Serving runs them in one session call; here each signature runs once."""
    check_multi_inference_tasks(request)
    seen, plan = set(), []
    for task in request.tasks:
        signature_name = task.model_spec.signature_name or DEFAULT_SIGNATURE
        if signature_name in seen:
            raise invalid_argument(f"Duplicate evaluation of signature: {signature_name}")
        seen.add(signature_name)
        signature_def = servable.signature_defs.get(signature_name)
        if signature_def is None:
            raise invalid_argument(f"Requested signature not found in model graph: {signature_name}")
        if task.method_name == CLASSIFY_METHOD:
            outputs = classification_outputs(signature_def, options)
        elif task.method_name == REGRESS_METHOD:
            outputs = regression_outputs(signature_def, options)
        else:
            raise ServingError(grpc.StatusCode.UNIMPLEMENTED,
                               f"Unsupported signature method_name: {task.method_name}")
        plan.append((task, signature_name, signature_def, outputs))
    examples = _examples(request.input, options)
    response = inference_pb2.MultiInferenceResponse()
    for task, signature_name, signature_def, outputs in plan:
        results = servable.run(signature_name, {CLASSIFY_INPUTS: examples}, outputs)
        entry = response.results.add()
        if task.method_name == CLASSIFY_METHOD:
            classification_result(signature_def, len(examples), results, entry.classification_result)
        else:
            regression_result(signature_def, len(examples), results, entry.regression_result)
        _fill_model_spec(entry.model_spec, task.model_spec.name, task.model_spec.signature_name, servable.version)
    return response
