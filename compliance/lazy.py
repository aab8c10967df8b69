"""Lazy, thread-safe model loading: one load per instance, on first use."""

from __future__ import annotations

import hashlib
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")


class ModelFileError(RuntimeError):
    """A model file is missing or is not the file we expect."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verified_model_file(path: Path, expected_sha256: str | None) -> Path:
    """The path, once it exists and (when a digest is given) holds exactly the expected bytes."""
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    if expected_sha256 is not None:
        actual = file_sha256(path)
        if actual != expected_sha256:
            raise ModelFileError(
                f"model file {path} has sha256 {actual}, expected {expected_sha256}: "
                "it is corrupt or a different model; reinstall the package"
            )
    return path


class LazyModel(ABC, Generic[T]):
    """Base class for every model: ``load()`` is called at most once, behind a lock.

    Fetching weights is not this class's job: ``_load`` reads files that are already on disk
    (shipped with a package, or fetched by ``compliance models pull``) and fails clearly if not.
    """

    name: str = "model"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._model: T | None = None

    @abstractmethod
    def _load(self) -> T: ...

    def load(self) -> T:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def version(self) -> str:
        """A short identifier of the weights, recorded in each judgment's provenance."""
        return "unknown"


def load_models(*parts: object, depth: int = 6) -> int:
    """Load every ``LazyModel`` among ``parts`` and the objects they hold (a pipeline's stages, a
    stage's recognisers), so that a worker's first task does not pay for it. Returns how many loaded."""
    seen: set[int] = set()

    def walk(obj: object, depth: int) -> int:
        if depth < 0 or id(obj) in seen or isinstance(obj, (str, bytes, int, float, type)):
            return 0
        seen.add(id(obj))
        count = 0
        if isinstance(obj, LazyModel) and not obj.loaded:
            obj.load()
            count += 1
        if isinstance(obj, (list, tuple)):
            children: list[object] = list(obj)
        elif hasattr(obj, "__dict__"):
            children = list(vars(obj).values())
        else:
            children = [getattr(obj, slot, None) for slot in getattr(type(obj), "__slots__", ())]
        return count + sum(walk(child, depth - 1) for child in children)

    return sum(walk(part, depth) for part in parts)
