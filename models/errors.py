"""Errors of the science code that a user can cause and fix, importable without torch (the
command line answers them with one line, before or without loading any model)."""


class BackboneUnavailable(RuntimeError):
    """The backbone cannot be loaded as named: neither a local folder nor fetchable from the
    hub, a folder whose files do not make a model (say, weights whose shapes differ from its
    config), or a first-``k``-layers cut that the model cannot give."""
