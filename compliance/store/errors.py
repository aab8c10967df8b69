"""The store's domain errors. Lookups subclass ``LookupError`` and bad input ``ValueError``, so the
CLI and API can turn them into one-line messages without knowing each class."""

from __future__ import annotations


class StoreError(Exception):
    """Anything the store refuses."""


class RegistryError(StoreError):
    """Carriers, vehicles and drivers."""


class UnknownCarrier(RegistryError, LookupError):
    def __init__(self, ref: str | int) -> None:
        super().__init__(f"no carrier {ref!r}")
        self.ref = ref


class UnknownVehicle(RegistryError, LookupError):
    def __init__(self, ref: str | int, carrier_id: int | None = None) -> None:
        where = f" for carrier {carrier_id}" if carrier_id is not None else ""
        super().__init__(f"no vehicle {ref!r}{where}")
        self.ref = ref


class UnknownDriver(RegistryError, LookupError):
    def __init__(self, ref: str | int, carrier_id: int | None = None) -> None:
        where = f" for carrier {carrier_id}" if carrier_id is not None else ""
        super().__init__(f"no driver {ref!r}{where}")
        self.ref = ref


class UnknownSite(RegistryError, LookupError):
    def __init__(self, code: str, carrier_id: int | None = None) -> None:
        super().__init__(f"no site {code!r}" + (f" for carrier {carrier_id}" if carrier_id is not None else ""))
        self.code = code


class DuplicateSite(RegistryError, ValueError):
    def __init__(self, code: str, carrier_id: int) -> None:
        super().__init__(f"site {code!r} is already registered for carrier {carrier_id}")


class DuplicateCarrier(RegistryError, ValueError):
    def __init__(self, code: str) -> None:
        super().__init__(f"carrier code {code!r} is already registered")
        self.code = code


class DuplicatePlate(RegistryError, ValueError):
    def __init__(self, plate: str, carrier_id: int) -> None:
        super().__init__(f"plate {plate!r} is already registered for carrier {carrier_id}")
        self.plate = plate


class DuplicateDriver(RegistryError, ValueError):
    def __init__(self, external_ref: str, carrier_id: int) -> None:
        super().__init__(f"driver {external_ref!r} is already registered for carrier {carrier_id}")
        self.external_ref = external_ref


class InvalidRegistration(RegistryError, ValueError):
    pass


class InvalidPlate(RegistryError, ValueError):
    pass


class InvalidThresholds(RegistryError, ValueError):
    pass


class UnknownSubmission(StoreError, LookupError):
    def __init__(self, submission_id: str) -> None:
        super().__init__(f"no submission {submission_id!r}")
        self.submission_id = submission_id


class IdempotencyConflict(StoreError, ValueError):
    """The same idempotency key was sent again with a different photo."""


class InvalidSubmission(StoreError, ValueError):
    pass


class InvalidVerdict(StoreError, ValueError):
    pass


class InvalidCursor(StoreError, ValueError):
    def __init__(self, cursor: str) -> None:
        super().__init__(f"not a page cursor this list handed out: {cursor[:40]!r}")


class InvalidBlobKey(StoreError, ValueError):
    pass


class MissingBlob(StoreError, LookupError):
    def __init__(self, sha256: str) -> None:
        super().__init__(f"no blob {sha256}")
        self.sha256 = sha256


class PhotoStoreUnavailable(StoreError):
    """The photo store (an S3 endpoint) did not answer, or refused our credentials: nothing was
    stored or read; the request may be tried again."""


class CorruptBlob(StoreError):
    """A blob's bytes no longer hash to its name: the disk, not the caller, is at fault."""


class AuditTrailImmutable(StoreError, RuntimeError):
    """The audit trail is append-only."""


# The service


class InvalidApiKey(StoreError):
    """A bearer token that names no live key: unknown, malformed, wrong secret or revoked."""


class UnknownApiKey(StoreError, LookupError):
    def __init__(self, key_id: str) -> None:
        super().__init__(f"no API key {key_id!r}")
        self.key_id = key_id


class UnknownWebhook(StoreError, LookupError):
    def __init__(self, webhook_id: int) -> None:
        super().__init__(f"no webhook {webhook_id}")
        self.webhook_id = webhook_id


class UnknownAuditJob(StoreError, LookupError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"no audit job {job_id!r}")
        self.job_id = job_id


class InvalidAuditJob(StoreError, ValueError):
    pass


class UserError(StoreError):
    """People who sign in to the dashboard."""


class UnknownUser(UserError, LookupError):
    def __init__(self, username: str) -> None:
        super().__init__(f"no user named {username!r}")
        self.username = username


class DuplicateUser(UserError, ValueError):
    def __init__(self, username: str) -> None:
        super().__init__(f"a user named {username!r} already exists")
        self.username = username


class InvalidUser(UserError, ValueError):
    pass
