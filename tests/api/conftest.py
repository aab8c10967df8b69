"""The API's tests run the real app as ``compliance api`` builds it. The ``api`` fixture lives with
the service's stack in tests/service (the benches import its helpers from there) and is brought
into this room here."""

from tests.service.conftest import api  # noqa: F401 - fixtures for this room
