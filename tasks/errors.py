"""The error every stage raises for bad input: the CLI answers it with one line and exit 2."""


class DataError(ValueError):
    """Bad input data or settings found only once the data is read: the message names the
    key, file or column at fault."""
