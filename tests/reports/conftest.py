"""Reports read what the store wrote: the store's fixtures (a migrated database of each kind)."""

from tests.store.conftest import engine, fleet, session  # noqa: F401
