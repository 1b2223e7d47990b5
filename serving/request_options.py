"""Server settings that shape how each request is answered."""
import dataclasses
from typing import Optional

from serving.image_header import DEFAULT_MAX_IMAGE_PIXELS


@dataclasses.dataclass(frozen=True)
class RequestOptions:
    # --enable_signature_method_name_check: TF Serving checks SignatureDef
    # method names only when asked (TF2 exports have no classify/regress names).
    method_name_check: bool = False
    # --enable_serialization_as_tensor_content
    tensor_content: bool = False
    # width x height read from each image's header; 0: no limit.
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    # Deadline of one model run (REST: --rest_api_timeout_in_ms; gRPC: none).
    timeout_ms: Optional[int] = None

    def with_timeout(self, timeout_ms: Optional[int]) -> "RequestOptions":
        return dataclasses.replace(self, timeout_ms=timeout_ms)
