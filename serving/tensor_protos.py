"""TensorProto <-> numpy as TF Serving converts them.

TF Serving answers Predict with each output tensor in the typed repeated
field of its dtype (`float_val`, `int64_val`, ...: Tensor::AsProtoField), or
in `tensor_content` with --enable_serialization_as_tensor_content
(tensorflow_serving/servables/tensorflow/predict_util.cc,
PostProcessPredictionResult). Requests are read with Tensor::FromProto's
rules, which tf.make_ndarray follows: fewer values than the shape holds
repeat the last one; more is an error.
"""
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

# numpy dtype -> (TensorProto dtype, typed field); half-precision values travel as their bits.
_FIELDS = {
    np.dtype(np.float32): (types_pb2.DT_FLOAT, "float_val"),
    np.dtype(np.float64): (types_pb2.DT_DOUBLE, "double_val"),
    np.dtype(np.int32): (types_pb2.DT_INT32, "int_val"),
    np.dtype(np.int16): (types_pb2.DT_INT16, "int_val"),
    np.dtype(np.int8): (types_pb2.DT_INT8, "int_val"),
    np.dtype(np.uint8): (types_pb2.DT_UINT8, "int_val"),
    np.dtype(np.uint16): (types_pb2.DT_UINT16, "int_val"),
    np.dtype(np.int64): (types_pb2.DT_INT64, "int64_val"),
    np.dtype(np.uint32): (types_pb2.DT_UINT32, "uint32_val"),
    np.dtype(np.uint64): (types_pb2.DT_UINT64, "uint64_val"),
    np.dtype(np.bool_): (types_pb2.DT_BOOL, "bool_val"),
    np.dtype(np.float16): (types_pb2.DT_HALF, "half_val"),
}


class TensorParseError(ValueError):
    """A TensorProto that does not describe a tensor."""


def _shape_proto(shape) -> tensor_shape_pb2.TensorShapeProto:
    return tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=size)
                                                  for size in shape])


def to_proto_fields(array: np.ndarray) -> tensor_pb2.TensorProto:
    """The tensor in the typed field of its dtype (Tensor::AsProtoField)."""
    array = np.asarray(array)
    proto = tensor_pb2.TensorProto(tensor_shape=_shape_proto(array.shape))
    if array.dtype == object or array.dtype.kind in ("S", "U"):
        proto.dtype = types_pb2.DT_STRING
        proto.string_val.extend(value.encode("utf-8") if isinstance(value, str) else bytes(value)
                                for value in array.flat)
        return proto
    if array.dtype == tf.bfloat16.as_numpy_dtype:
        proto.dtype = types_pb2.DT_BFLOAT16
        proto.half_val.extend(array.view(np.uint16).ravel().tolist())
        return proto
    if array.dtype.kind == "c":
        proto.dtype = types_pb2.DT_COMPLEX64 if array.dtype == np.complex64 else types_pb2.DT_COMPLEX128
        field = proto.scomplex_val if array.dtype == np.complex64 else proto.dcomplex_val
        field.extend(np.stack([array.real.ravel(), array.imag.ravel()], axis=1).ravel().tolist())
        return proto
    dtype, field = _FIELDS[array.dtype]
    proto.dtype = dtype
    values = array.view(np.uint16) if array.dtype == np.float16 else array
    getattr(proto, field).extend(values.ravel().tolist())
    return proto


def to_proto(array: np.ndarray, as_tensor_content: bool = False) -> tensor_pb2.TensorProto:
    """Tensor::AsProtoField, or Tensor::AsProtoTensorContent (strings keep
    their typed field: they have no tensor_content form)."""
    proto = to_proto_fields(array)
    if as_tensor_content and proto.dtype != types_pb2.DT_STRING:
        content = np.ascontiguousarray(array).tobytes()  # little-endian, as TensorFlow writes it
        proto = tensor_pb2.TensorProto(dtype=proto.dtype, tensor_shape=proto.tensor_shape, tensor_content=content)
    return proto


def to_array(proto: tensor_pb2.TensorProto) -> np.ndarray:
    """Tensor::FromProto's reading of a request tensor; TensorParseError if it
    holds more values than its shape, an invalid shape or dtype."""
    try:
        return tf.make_ndarray(proto)
    except (ValueError, TypeError, KeyError, IndexError) as error:
        raise TensorParseError(str(error)) from None
