"""The one error type the server raises: a gRPC status code and a message.

gRPC handlers abort with it unchanged; the REST handler maps the code to the
HTTP status TF Serving's HTTP server uses for it.
"""
import http

import grpc

# tensorflow_serving/model_servers/http_server.cc, ToHTTPStatusCode.
CLIENT_CLOSED_REQUEST = 499
_HTTP_STATUS = {
    grpc.StatusCode.CANCELLED: CLIENT_CLOSED_REQUEST,
    grpc.StatusCode.INVALID_ARGUMENT: http.HTTPStatus.BAD_REQUEST,
    grpc.StatusCode.FAILED_PRECONDITION: http.HTTPStatus.BAD_REQUEST,
    grpc.StatusCode.OUT_OF_RANGE: http.HTTPStatus.BAD_REQUEST,
    grpc.StatusCode.NOT_FOUND: http.HTTPStatus.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS: http.HTTPStatus.CONFLICT,
    grpc.StatusCode.ABORTED: http.HTTPStatus.CONFLICT,
    grpc.StatusCode.PERMISSION_DENIED: http.HTTPStatus.FORBIDDEN,
    grpc.StatusCode.UNAUTHENTICATED: http.HTTPStatus.UNAUTHORIZED,
    grpc.StatusCode.RESOURCE_EXHAUSTED: http.HTTPStatus.TOO_MANY_REQUESTS,
    grpc.StatusCode.DEADLINE_EXCEEDED: http.HTTPStatus.GATEWAY_TIMEOUT,
    grpc.StatusCode.UNIMPLEMENTED: http.HTTPStatus.NOT_IMPLEMENTED,
    grpc.StatusCode.UNAVAILABLE: http.HTTPStatus.SERVICE_UNAVAILABLE,
}


class ServingError(Exception):
    """A request failed with a TF Serving status code (never OK)."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return int(_HTTP_STATUS.get(self.code, http.HTTPStatus.INTERNAL_SERVER_ERROR))

    def __str__(self):
        return f"{self.code.name}: {self.message}"


def invalid_argument(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.NOT_FOUND, message)


def failed_precondition(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.FAILED_PRECONDITION, message)
