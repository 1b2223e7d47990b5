"""PredictionService.Predict on one servable, by TF Serving's rules
(tensorflow_serving/servables/tensorflow/predict_util.cc): the request's
tensors fed as they are (shapes are the graph's business), the signature's
defaults for inputs left out, the output filter, and the outputs in typed
proto fields.
"""
from typing import Dict

import grpc
import numpy as np
from tensorflow_serving.apis import predict_pb2

from serving import input_checks, tensor_protos
from serving.errors import ServingError, invalid_argument
from serving.request_options import RequestOptions
from serving.servable import DEFAULT_SIGNATURE, Servable

PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"


def _join(names) -> str:
    return ",".join(sorted(names))


def find_signature(servable: Servable, signature_name: str):
    name = signature_name or DEFAULT_SIGNATURE
    signature_def = servable.signature_defs.get(name)
    if signature_def is None:
        raise ServingError(grpc.StatusCode.FAILED_PRECONDITION, f'Serving signature key "{name}" not found.')
    return name, signature_def


def _check_method(signature_def, options: RequestOptions) -> None:
    if options.method_name_check and signature_def.method_name not in (
            PREDICT_METHOD, CLASSIFY_METHOD, REGRESS_METHOD):
        raise ServingError(grpc.StatusCode.INTERNAL, (
            f"Expected prediction signature method_name to be one of {{{PREDICT_METHOD}, {CLASSIFY_METHOD}, "
            f"{REGRESS_METHOD}}}. Was: {signature_def.method_name}"))


def _check_input_count(signature_def, request) -> None:
    """VerifyRequestInputsSize: more inputs than the signature's, or fewer
    when it has no defaults to fill in."""
    sent, expected = set(request.inputs), set(signature_def.inputs)
    if len(sent) > len(expected) or (len(sent) < len(expected) and not signature_def.defaults):
        raise invalid_argument(
            f"input size does not match signature: {len(sent)}!={len(expected)} len({{{_join(sent)}}}) != "
            f"len({{{_join(expected)}}}). Sent extra: {{{_join(sent - expected)}}}. "
            f"Missing but required: {{{_join(expected - sent)}}}.")


def _input_arrays(signature_def, request) -> Dict[str, np.ndarray]:
    """alias -> array: the request's tensors, the signature's defaults for the rest."""
    unknown = sorted(set(request.inputs) - set(signature_def.inputs))
    if unknown:
        raise invalid_argument(f"input tensor alias not found in signature: {unknown[0]}. "
                               f"Inputs expected to be in the set {{{_join(signature_def.inputs)}}}.")
    arrays = {}
    for alias in signature_def.inputs:
        if alias in request.inputs:
            proto = request.inputs[alias]
        elif alias in signature_def.defaults:
            proto = signature_def.defaults[alias]
        else:
            raise invalid_argument(f"input tensor alias not found in signature: {alias}. "
                                   f"Inputs expected to be in the set {{{_join(signature_def.inputs)}}}.")
        try:
            arrays[alias] = tensor_protos.to_array(proto)
        except tensor_protos.TensorParseError:
            raise invalid_argument(f"tensor parsing error: {alias}") from None
    return arrays


def _output_aliases(signature_def, request) -> list:
    aliases = []
    for alias in request.output_filter:
        if alias not in signature_def.outputs:
            raise invalid_argument(f"output tensor alias not found in signature: {alias} Outputs expected "
                                   f"to be in the set {{{_join(signature_def.outputs)}}}.")
        if alias in aliases:
            raise invalid_argument(f"duplicate output tensor alias: {alias}")
        aliases.append(alias)
    return aliases or list(signature_def.outputs)


def predict(servable: Servable, request: predict_pb2.PredictRequest,
            options: RequestOptions) -> predict_pb2.PredictResponse:
    signature_name, signature_def = find_signature(servable, request.model_spec.signature_name)
    _check_method(signature_def, options)
    _check_input_count(signature_def, request)
    inputs = _input_arrays(signature_def, request)
    aliases = _output_aliases(signature_def, request)
    input_checks.check_contract_inputs(inputs, options.max_image_pixels)
    results = servable.run(signature_name, inputs, aliases)
    response = predict_pb2.PredictResponse()
    response.model_spec.name = request.model_spec.name
    response.model_spec.signature_name = signature_name
    response.model_spec.version.value = servable.version
    for alias in aliases:
        response.outputs[alias].CopyFrom(tensor_protos.to_proto(results[alias], options.tensor_content))
    return response
