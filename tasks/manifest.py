"""Manifests: what stages pass to each other instead of tensors.

A manifest names where an artifact folder lives (relative to ``W2S_HOME``), the
fingerprint of its content, and a few facts. Cache keys are built from fingerprints,
never from paths, so a stage reruns when its inputs' content changes and only then.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable

from pydantic import BaseModel, ConfigDict

from tasks.workspace import home


class Manifest(BaseModel):
    model_config = ConfigDict(frozen=True)

    stage: str
    key: str  # the cache key that produced it
    path: str  # artifact folder, relative to W2S_HOME
    fingerprint: str  # hash of the folder's content
    facts: dict[str, Any] = {}
    mlflow_run_id: str | None = None  # the child run that computed it

    @property
    def dir(self) -> Path:
        return home() / self.path

    def file(self, name: str) -> Path:
        return self.dir / name

    @property
    def attempts(self) -> int:
        """How many times its stage ran before it succeeded (tasks.stage retries transient I/O)."""
        return int(self.facts.get("attempts", 1))


# The stage's own record of how it was computed (code hashes, parameters): it says why a
# result exists, not what it is, so a comment edited in a module must not change it.
STAGE_RECORD = "_stage.json"


def fingerprint_dir(path: Path) -> str:
    """SHA-256 over the relative names and bytes of every file under ``path``.

    ``datasets`` writes a random ``_fingerprint`` into ``state.json``; it is skipped so that
    identical content gives an identical fingerprint, and so is the stage record.
    """
    return hash_files(path, (p for p in path.rglob("*") if p.is_file() and p.name not in ("state.json", STAGE_RECORD)))


def hash_files(root: Path, files: Iterable[Path]) -> str:
    """SHA-256 over each file's name relative to ``root`` and its bytes, in name order,
    read in 1 MiB blocks (a backbone's weights need not fit in memory twice)."""
    digest = hashlib.sha256()
    for f in sorted(files):
        digest.update(f.relative_to(root).as_posix().encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def canonical(value: Any) -> Any:
    """A JSON-able, order-stable view of a stage's parameters; manifests count by content only."""
    if isinstance(value, Manifest):
        return {"manifest": value.stage, "fingerprint": value.fingerprint}
    if isinstance(value, BaseModel):
        return canonical(value.model_dump(mode="json"))
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value


def hash_json(value: Any) -> str:
    return hashlib.sha256(json.dumps(canonical(value), sort_keys=True).encode()).hexdigest()
