"""StatisticsGen's options: TFDV told that the image feature holds image bytes.

Without the hint TFDV takes every bytes feature for a categorical string and
sketches its most frequent values (Misra-Gries and KMV sketches of the values
themselves), which for whole JPEGs made StatisticsGen's memory grow with the
number of images (measured in benchmarks/RESULTS-scaling.md). With the
feature's image_domain declared, TFDV computes bytes statistics (sizes) for it,
as it does for any image feature; the other features are inferred as before.
"""
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import schema_pb2

from components import contract


def image_bytes_schema_hint() -> schema_pb2.Schema:
    """A partial schema: only the image feature, as BYTES with an image domain."""
    schema = schema_pb2.Schema()
    image = schema.feature.add(name=contract.IMAGE_KEY, type=schema_pb2.BYTES)
    image.image_domain.SetInParent()
    return schema


def statistics_options() -> tfdv.StatsOptions:
    return tfdv.StatsOptions(schema=image_bytes_schema_hint())
