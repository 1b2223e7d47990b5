"""Errors a user can act on: each names the file, layer or model at fault."""


class ExplainError(ValueError):
    """Base class: bad input to an explanation (model, layer, image, class)."""


class ModelNotFoundError(ExplainError):
    """No Keras model file where a model was expected."""


class NotAConvnetError(ExplainError):
    """The model has no 2-D convolution layers to explain."""


class UnknownLayerError(ExplainError):
    """A layer name that the model does not have (or that is not a conv/pool layer)."""


class ImageDecodeError(ExplainError):
    """A file that is not a decodable JPEG/PNG image."""


class ClassIndexError(ExplainError):
    """A class that the model's output does not have."""
