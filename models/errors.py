"""Errors of the science code that a user can cause and fix, importable without torch (the
command line answers them with one line, before or without loading any model)."""


class BackboneUnavailable(RuntimeError):
    """The backbone is neither a local folder nor fetchable from the hub, or is a folder
    whose files do not make a model (say, weights whose shapes differ from its config)."""
