"""Lazy, thread-safe model loading: one load per instance, on first use."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import Generic, TypeVar

T = TypeVar("T")


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
