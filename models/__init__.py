"""The science: data generators, losses, detectors, bandits and Lightning modules.

Nothing in this package imports Prefect or MLflow, so every piece can be used and
tested on its own.
"""
