"""Near-duplicate photos: the 64-bit perceptual hash split into bands, probed by index."""

from __future__ import annotations

import re
from datetime import datetime
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from compliance.store.errors import InvalidSubmission
from compliance.store.models import HASH_BAND_BITS, HASH_BANDS, PhotoHashBand, Submission

_PHASH = re.compile(r"[0-9a-f]{16}")
_HASH_BITS = HASH_BANDS * HASH_BAND_BITS
_BAND_MASK = (1 << HASH_BAND_BITS) - 1


class SimilarPhoto(NamedTuple):
    submission: Submission
    distance: int


def _checked_phash(phash_hex: str) -> str:
    phash = phash_hex.strip().lower()
    if not _PHASH.fullmatch(phash):
        raise InvalidSubmission(f"photo_phash is not 16 hex digits (a 64-bit hash): {phash_hex!r}")
    return phash


def _band_value(value: int, band: int) -> int:
    # Band 0 is the hash's first two hex digits.
    return (value >> (_HASH_BITS - HASH_BAND_BITS * (band + 1))) & _BAND_MASK


def _within(value: int, radius: int) -> list[int]:
    return [v for v in range(1 << HASH_BAND_BITS) if (v ^ value).bit_count() <= radius]


def similar_photo_probe(carrier_id: int | None, phash_hex: str, max_distance: int) -> sa.Select[tuple[str]]:
    """The ids of every submission that may be within ``max_distance`` of ``phash_hex``, read
    from the band index alone.

    The 64 bits are split into ``HASH_BANDS`` bands, so a pair at distance d differs in at most
    d // HASH_BANDS bits in some band (pigeonhole). Probing each band for the values within that
    radius of the query's band therefore misses no match; for d <= 7 it is an exact lookup of
    one value per band.
    """
    if not 0 <= max_distance <= _HASH_BITS:
        raise ValueError(f"max_distance must be between 0 and {_HASH_BITS}, not {max_distance}")
    value = int(_checked_phash(phash_hex), 16)
    radius = max_distance // HASH_BANDS
    probes = []
    for band in range(HASH_BANDS):
        wanted = _within(_band_value(value, band), radius)
        probe = sa.select(PhotoHashBand.submission_id).where(
            PhotoHashBand.band == band,
            PhotoHashBand.value == wanted[0] if len(wanted) == 1 else PhotoHashBand.value.in_(wanted),
        )
        if carrier_id is not None:
            probe = probe.where(PhotoHashBand.carrier_id == carrier_id)
        probes.append(probe)
    # One indexed probe per band; UNION drops the ids found by several bands.
    return sa.union(*probes)  # type: ignore[return-value]


def find_similar_photos(
    session: Session,
    carrier_id: int | None,
    phash_hex: str,
    max_distance: int,
    exclude_submission_id: str | None = None,
    *,
    created_before: datetime | None = None,
) -> list[SimilarPhoto]:
    """Earlier submissions whose photo hash is within ``max_distance`` bits of ``phash_hex``,
    nearest first (``carrier_id`` None: across carriers). Pass the submission's own id as
    ``exclude_submission_id`` and its ``created_at`` as ``created_before`` when re-deciding it."""
    value = int(_checked_phash(phash_hex), 16)
    candidates = similar_photo_probe(carrier_id, phash_hex, max_distance).subquery()
    # Two steps: hashes of the candidates only (cheap), then whole rows of the true matches.
    query = sa.select(Submission.id, Submission.photo_phash).where(
        Submission.id.in_(sa.select(candidates.c.submission_id))
    )
    if exclude_submission_id is not None:
        query = query.where(Submission.id != exclude_submission_id)
    if created_before is not None:
        query = query.where(Submission.created_at < created_before)
    distances = {}
    for submission_id, phash in session.execute(query):
        distance = (int(phash, 16) ^ value).bit_count()
        if distance <= max_distance:
            distances[submission_id] = distance
    if not distances:
        return []
    matches = session.scalars(sa.select(Submission).where(Submission.id.in_(distances)))
    found = [SimilarPhoto(submission, distances[submission.id]) for submission in matches]
    found.sort(key=lambda s: (s.distance, s.submission.created_at, s.submission.id))
    return found
