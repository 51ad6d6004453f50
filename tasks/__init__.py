"""Prefect tasks: thin, cached wrappers that turn manifests into manifests.

Each stage lives in its own module, so that the code fingerprint in its cache key covers
that stage and the ``models`` modules it uses, and nothing else. Stages import the
torch-heavy parts of ``models`` inside their bodies: a fully cached rerun then never
pays for importing torch and Lightning.
"""
