"""TF Serving's REST JSON <-> its request and response protos, rule for rule
and message for message as tensorflow_serving/util/json_tensor.cc has them:

- predict: "instances" (row format: one entry per batch row, objects keyed by
  input name when the signature has several inputs) or "inputs" (columnar),
  values typed by the signature's dtypes, binary strings as {"b64": ...};
  answers "predictions" or "outputs" in the same format;
- classify / regress: "examples" (and an optional "context") as tf.Example
  features; answers "results";
- errors: {"error": message}.

Floats are written as TF Serving writes them (WriteDecimal): the shortest
"%g" text that reads back as the same float, whole numbers with ".0".
"""
import base64
import binascii
import json
import math
from typing import Dict, List, Mapping, Tuple

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

from serving.errors import ServingError, invalid_argument

INSTANCES, INPUTS, SIGNATURE_NAME = "instances", "inputs", "signature_name"
EXAMPLES, CONTEXT = "examples", "context"
PREDICTIONS, OUTPUTS, RESULTS, ERROR = "predictions", "outputs", "results", "error"
B64 = "b64"
BYTES_SUFFIX = "_bytes"
ROW, COLUMNAR = "row", "columnar"
_MAX_DEBUG_CHARS = 256
_INT_TYPES = (types_pb2.DT_INT32, types_pb2.DT_INT16, types_pb2.DT_INT8, types_pb2.DT_UINT8)


def _debug(value) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text[:_MAX_DEBUG_CHARS]


def _json_type(value) -> str:
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def _dtype_string(dtype: int) -> str:
    """DataTypeString: 'float', 'int64', 'string', ..."""
    return types_pb2.DataType.Name(dtype)[len("DT_"):].lower()


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _type_error(value, dtype: int) -> ServingError:
    return invalid_argument(f"JSON Value: {_debug(value)} Type: {_json_type(value)} is not of expected type: "
                            f"{_dtype_string(dtype)}")


def _is_base64_object(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(B64), str)


def _decode_base64(value) -> bytes:
    if not _is_base64_object(value):
        raise invalid_argument(f"JSON Value: {_debug(value)} not formatted correctly for base64 data")
    try:
        return base64.b64decode(value[B64], validate=True)
    except (binascii.Error, ValueError):
        raise invalid_argument("Unable to base64 decode") from None


def _add_value(value, dtype: int, tensor: tensor_pb2.TensorProto) -> None:
    """AddValueToTensor."""
    if dtype in (types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE):
        if not _is_number(value):
            raise _type_error(value, dtype)
        (tensor.float_val if dtype == types_pb2.DT_FLOAT else tensor.double_val).append(float(value))
    elif dtype in _INT_TYPES:
        if not _is_int(value, -2 ** 31, 2 ** 31 - 1):
            raise _type_error(value, dtype)
        tensor.int_val.append(value)
    elif dtype == types_pb2.DT_STRING:
        if not isinstance(value, str):
            raise _type_error(value, dtype)
        tensor.string_val.append(value.encode("utf-8"))
    elif dtype == types_pb2.DT_INT64:
        if not _is_int(value, -2 ** 63, 2 ** 63 - 1):
            raise _type_error(value, dtype)
        tensor.int64_val.append(value)
    elif dtype == types_pb2.DT_BOOL:
        if not isinstance(value, bool):
            raise _type_error(value, dtype)
        tensor.bool_val.append(value)
    elif dtype == types_pb2.DT_UINT32:
        if not _is_int(value, 0, 2 ** 32 - 1):
            raise _type_error(value, dtype)
        tensor.uint32_val.append(value)
    elif dtype == types_pb2.DT_UINT64:
        if not _is_int(value, 0, 2 ** 64 - 1):
            raise _type_error(value, dtype)
        tensor.uint64_val.append(value)
    else:
        raise ServingError(grpc.StatusCode.UNIMPLEMENTED, f"Conversion of JSON Value: {_debug(value)} to type: "
                                             f"{_dtype_string(dtype)}")


def _dense_shape(value) -> List[int]:
    """GetDenseTensorShape: sizes along the first element of each level."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _fill(value, level: int, dtype: int, tensor: tensor_pb2.TensorProto, shape: List[int]) -> int:
    """FillTensorProto: the values, checked to form a dense tensor of `shape`."""
    rank = len(shape)
    if not isinstance(value, list):
        if level != rank:
            raise invalid_argument(f"JSON Value: {_debug(value)} found at incorrect level: {level + 1} in the "
                                   f"JSON DOM. Expected at level: {rank}")
        if isinstance(value, dict):
            if dtype != types_pb2.DT_STRING:
                raise _type_error(value, dtype)
            tensor.string_val.append(_decode_base64(value))
        else:
            _add_value(value, dtype, tensor)
        return 1
    if level >= rank:
        raise invalid_argument(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise invalid_argument(f"Encountered list at unexpected size: {len(value)} at level: {level} "
                               f"expected size: {shape[level]}")
    return sum(_fill(item, level + 1, dtype, tensor, shape) for item in value)


def _tensor(value, dtype: int) -> Tuple[tensor_pb2.TensorProto, int]:
    shape = _dense_shape(value)
    tensor = tensor_pb2.TensorProto(dtype=dtype, tensor_shape=_shape_proto(shape))
    count = _fill(value, 0, dtype, tensor, shape)
    return tensor, count


def _shape_proto(shape) -> tensor_shape_pb2.TensorShapeProto:
    return tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in shape])


def _shape_text(shape) -> str:
    return "[" + ",".join(str(size) for size in shape) + "]"


def parse_document(body: bytes) -> dict:
    """ParseJson: a JSON object, or INVALID_ARGUMENT saying why not."""
    if not body:
        raise invalid_argument("JSON Parse error: The document is empty")
    try:
        document = json.loads(body)
    except UnicodeDecodeError as error:
        raise invalid_argument(f"JSON Parse error: Invalid encoding in string. at offset: {error.start}") from None
    except json.JSONDecodeError as error:
        raise invalid_argument(f"JSON Parse error: {error.msg} at offset: {error.pos}") from None
    except RecursionError:
        raise invalid_argument("JSON Parse error: nested too deeply") from None
    if not isinstance(document, dict):
        raise invalid_argument(f"JSON Value: {_debug(document)} Is not object")
    return document


def signature_name(document: dict) -> str:
    """FillSignature: the optional "signature_name", a string."""
    name = document.get(SIGNATURE_NAME, "")
    if not isinstance(name, str):
        raise invalid_argument(f"JSON Value: {_debug(document)} not formatted correctly. "
                               "'signature_name' key must be a string value.")
    return name


def _is_element_object(value) -> bool:
    return isinstance(value, dict) and not _is_base64_object(value)


def _instances(instances: list, input_dtypes: Mapping[str, int]) -> Dict[str, tensor_pb2.TensorProto]:
    """FillTensorMapFromInstancesList: rows batched along a new first dimension."""
    if not isinstance(instances[0], dict) and len(input_dtypes) > 1:
        raise invalid_argument("instances is a plain list, but expecting list of objects as multiple input "
                               "tensors required as per tensorinfo_map")
    named = _is_element_object(instances[0])
    names = sorted(input_dtypes)
    tensors: Dict[str, tensor_pb2.TensorProto] = {}
    sizes: Dict[str, Tuple[int, List[int]]] = {}

    def add(item, name: str) -> None:
        if name not in input_dtypes:
            raise invalid_argument(f"JSON object: does not have named input: {name}")
        row, count = _tensor(item, input_dtypes[name])
        shape = [dim.size for dim in row.tensor_shape.dim]
        if name not in sizes:
            sizes[name] = (count, shape)
        elif sizes[name][0] != count:
            raise invalid_argument(f"Expecting tensor size: {sizes[name][0]} but got: {count}")
        elif sizes[name][1] != shape:
            raise invalid_argument(f"Expecting shape {_shape_text(sizes[name][1])} but got: {_shape_text(shape)}")
        # Values append row after row; the batch's shape is set at the end.
        tensors.setdefault(name, tensor_pb2.TensorProto()).MergeFrom(row)

    for index, item in enumerate(instances):
        if named:
            if not _is_element_object(item):
                raise invalid_argument(f"Expecting object but got list at item {index} of input list")
            for name, value in item.items():
                try:
                    add(value, name)
                except ServingError as error:
                    raise invalid_argument(f"Failed to process element: {index} key: {name} of 'instances' "
                                           f"list. Error: {error.code.name}: {error.message}") from None
            if set(item) != set(names):
                raise invalid_argument(f"Failed to process element: {index} of 'instances' list. JSON object: "
                                       f"{_debug(item)} keys must be equal to: {','.join(names)}")
        else:
            if _is_element_object(item):
                raise invalid_argument(f"Expecting value/list but got object at item {index} of input list")
            try:
                add(item, names[0])
            except ServingError as error:
                raise invalid_argument(f"Failed to process element: {index} of 'instances' list. "
                                       f"Error: {error.code.name}: {error.message}") from None
    for name, tensor in tensors.items():
        tensor.tensor_shape.CopyFrom(_shape_proto([len(instances)] + sizes[name][1]))
    return tensors


def _columns(inputs, input_dtypes: Mapping[str, int]) -> Dict[str, tensor_pb2.TensorProto]:
    """FillTensorMapFromInputsMap: one value per input, taken as a whole tensor."""
    if not isinstance(inputs, dict) or _is_base64_object(inputs):
        if len(input_dtypes) > 1:
            raise invalid_argument("inputs is a plain value/list, but expecting an object as multiple input "
                                   "tensors required as per tensorinfo_map")
        name = next(iter(input_dtypes))
        return {name: _tensor(inputs, input_dtypes[name])[0]}
    tensors = {}
    for name in sorted(input_dtypes):
        if name not in inputs:
            raise invalid_argument(f"Missing named input: {name} in 'inputs' object.")
        tensors[name] = _tensor(inputs[name], input_dtypes[name])[0]
    return tensors


def predict_inputs(document: dict, input_dtypes: Mapping[str, int], signature: str
                   ) -> Tuple[Dict[str, tensor_pb2.TensorProto], str]:
    """FillPredictRequestFromJson: (input tensors, ROW or COLUMNAR)."""
    if not input_dtypes:
        raise invalid_argument(f"Failed to get input map for signature: {signature or 'DEFAULT'}")
    if INSTANCES in document:
        if INPUTS in document:
            raise invalid_argument(f"JSON Value: {_debug(document)} Not formatted correctly expecting only one "
                                   f"of '{INPUTS}' or '{INSTANCES}' keys to exist ")
        instances = document[INSTANCES]
        if not isinstance(instances, list):
            raise invalid_argument(f"JSON Value: {_debug(document)} Expecting '{INSTANCES}' to be an list/array")
        if not instances:
            raise invalid_argument(f"JSON Value: {_debug(document)} No values in '{INSTANCES}' array")
        return _instances(instances, input_dtypes), ROW
    if INPUTS in document:
        return _columns(document[INPUTS], input_dtypes), COLUMNAR
    raise invalid_argument("Missing 'inputs' or 'instances' key")


# --- classify / regress requests ----------------------------------------------------------

_FEATURE_KIND_NAMES = {"bytes_list": "bytes", "float_list": "float", "int64_list": "int64", None: "UNKNOWN"}


def _add_feature_value(value, name: str, feature: tf.train.Feature) -> None:
    """AddValueToFeature: strings and {"b64"} -> bytes, decimals -> float,
    integers and booleans -> int64; one kind per feature."""
    if isinstance(value, bool):
        kind, add = "int64_list", lambda: feature.int64_list.value.append(int(value))
    elif _is_base64_object(value):
        kind, add = "bytes_list", lambda: feature.bytes_list.value.append(_decode_base64(value))
    elif isinstance(value, str):
        kind, add = "bytes_list", lambda: feature.bytes_list.value.append(value.encode("utf-8"))
    elif isinstance(value, float):
        kind, add = "float_list", lambda: feature.float_list.value.append(value)
    elif isinstance(value, int):
        if value >= 2 ** 63:
            raise invalid_argument(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
        kind, add = "int64_list", lambda: feature.int64_list.value.append(value)
    else:
        raise invalid_argument(f"Feature: {name} has element with unexpected JSON type: {_json_type(value)}")
    current = feature.WhichOneof("kind")
    if current not in (None, kind):
        raise invalid_argument(f"Unexpected element type in feature: {name} expecting type: "
                               f"{_FEATURE_KIND_NAMES[current]}")
    add()


def _example(value, example: tf.train.Example) -> None:
    if not isinstance(value, dict):
        raise invalid_argument(f"Example must be JSON object but got JSON {_json_type(value)}")
    for name, content in value.items():
        feature = tf.train.Feature()
        for item in content if isinstance(content, list) else [content]:
            _add_feature_value(item, name, feature)
        example.features.feature[name].CopyFrom(feature)


def fill_examples(document: dict, model_input) -> None:
    """FillClassifyRegressRequestFromJson into a tensorflow.serving.Input."""
    if CONTEXT in document:
        _example(document[CONTEXT], model_input.example_list_with_context.context)
    if EXAMPLES not in document:
        raise invalid_argument(f"JSON Value: {_debug(document)} When method is classify, key '{EXAMPLES}' is "
                               "expected and was not found")
    examples = document[EXAMPLES]
    if not isinstance(examples, list):
        raise invalid_argument(f"JSON Value: {_debug(document)} Expecting '{EXAMPLES}' value to be an list/array")
    if not examples:
        raise invalid_argument(f"JSON Value: {_debug(document)} '{EXAMPLES}' value is an empty array")
    for value in examples:
        target = (model_input.example_list_with_context.examples if CONTEXT in document
                  else model_input.example_list.examples)
        _example(value, target.add())


# --- responses ---------------------------------------------------------------------------

def decimal_text(value: float, float32: bool = True) -> str:
    """WriteDecimal: "%g" if it reads back as the same value, else full
    precision; whole numbers get ".0"; NaN, Infinity, -Infinity."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    cast = np.float32 if float32 else float
    text = f"{value:g}"
    if cast(float(text)) != cast(value):
        text = f"{value:.{9 if float32 else 17}g}"
    if "." not in text and "e" not in text:
        text += ".0"
    return text


def _scalar_text(value, string_as_bytes: bool) -> str:
    if isinstance(value, (bytes, np.bytes_)):
        if not string_as_bytes:
            try:
                return json.dumps(bytes(value).decode("utf-8"), ensure_ascii=False)
            except UnicodeDecodeError:
                pass  # not text: sent as {"b64"} rather than as invalid JSON
        return '{"b64": ' + json.dumps(base64.b64encode(bytes(value)).decode("ascii")) + "}"
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (np.floating, float)):
        return decimal_text(float(value), float32=not isinstance(value, (np.float64, float)))
    return str(int(value))


def _values_text(array, string_as_bytes: bool) -> str:
    if not isinstance(array, np.ndarray):  # one element of an array
        return _scalar_text(array, string_as_bytes)
    if array.ndim == 0:
        return _scalar_text(array[()], string_as_bytes)
    return "[" + ", ".join(_values_text(row, string_as_bytes) for row in array) + "]"


def _is_bytes_output(name: str, array: np.ndarray) -> bool:
    return array.dtype == object and name.endswith(BYTES_SUFFIX)


def predict_response_text(outputs: Dict[str, np.ndarray], format_: str) -> str:
    """MakeJsonFromTensors: "predictions" (row) or "outputs" (columnar)."""
    if not outputs:
        raise invalid_argument("Cannot convert empty tensor map to JSON")
    if format_ == COLUMNAR:
        if len(outputs) == 1:
            (name, array), = outputs.items()
            body = _values_text(array, _is_bytes_output(name, array))
        else:
            body = "{" + ", ".join(f"{json.dumps(name)}: {_values_text(array, _is_bytes_output(name, array))}"
                                   for name, array in outputs.items()) + "}"
        return '{"' + OUTPUTS + '": ' + body + "}"
    batch = -1
    for name, array in outputs.items():
        if array.ndim == 0:
            raise invalid_argument(f"Tensor name: {name} has no shape information ")
        if batch >= 0 and array.shape[0] != batch:
            raise invalid_argument(f"Tensor name: {name} has inconsistent batch size: {array.shape[0]} "
                                   f"expecting: {batch}")
        batch = array.shape[0]
    rows = []
    for row in range(batch):
        if len(outputs) == 1:
            (name, array), = outputs.items()
            rows.append(_values_text(array[row], _is_bytes_output(name, array)))
        else:
            rows.append("{" + ", ".join(
                f"{json.dumps(name)}: {_values_text(array[row], _is_bytes_output(name, array))}"
                for name, array in outputs.items()) + "}")
    return '{"' + PREDICTIONS + '": [' + ", ".join(rows) + "]}"


def classification_text(result) -> str:
    """MakeJsonFromClassificationResult: [[[label, score], ...], ...]."""
    if not result.classifications:
        raise invalid_argument("Cannot convert empty ClassificationResults to JSON")
    rows = ("[" + ", ".join(f"[{json.dumps(entry.label, ensure_ascii=False)}, {decimal_text(entry.score)}]"
                            for entry in classifications.classes) + "]"
            for classifications in result.classifications)
    return '{"' + RESULTS + '": [' + ", ".join(rows) + "]}"


def regression_text(result) -> str:
    """MakeJsonFromRegressionResult: [value, ...]."""
    if not result.regressions:
        raise invalid_argument("Cannot convert empty RegressionResults to JSON")
    return '{"' + RESULTS + '": [' + ", ".join(decimal_text(r.value) for r in result.regressions) + "]}"


def error_text(message: str) -> str:
    return json.dumps({ERROR: message}, ensure_ascii=False)

