"""Errors that mean the input data is wrong, not the code.

Runners print their one-line message instead of a traceback (the message says
what was found and what was expected). Kept free of TensorFlow imports so a
runner can catch them without paying for one.
"""


class BadInputError(ValueError):
    """The data cannot be ingested as given; the message says why."""


class DataLayoutError(BadInputError):
    """The data directory does not have the SPLIT/CLASS/image layout."""


class IngestionError(BadInputError):
    """Too many input files were rejected."""
