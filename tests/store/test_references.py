"""Which photo hashes the database refers to, one two-hex-digit prefix at a time: a submission's
photo, a driver's licence photo, and a licence photo only the audit trail still names."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from compliance.store import references, registry, submissions
from tests.store.samples import Fleet


def h(prefix: str, fill: str = "0") -> str:
    return prefix + fill * 62


def submit(session: Session, fleet: Fleet, sha: str) -> None:
    submissions.create_submission(
        session,
        carrier_id=fleet.carrier_id,
        driver_id=fleet.driver_id,
        photo_sha256=sha,
        photo_phash="0123456789abcdef",
        source="cli",
    )


def test_submissions_and_licences_by_prefix_range(session: Session, fleet: Fleet) -> None:
    for sha in (h("ab"), h("ab", "f"), h("aa", "f"), h("ac"), h("ff", "e"), h("00")):
        submit(session, fleet, sha)
    submit(session, fleet, h("ab"))  # the same photo twice: one hash
    registry.set_driver_licence(session, fleet.driver_id, h("ab", "1"))
    registry.set_driver_licence(session, fleet.other_driver_id, h("fe", "1"))
    session.commit()
    assert references.referenced_with_prefix(session, "ab") == {h("ab"), h("ab", "f"), h("ab", "1")}
    assert references.referenced_with_prefix(session, "ff") == {h("ff", "e")}
    assert references.referenced_with_prefix(session, "fe") == {h("fe", "1")}
    assert references.referenced_with_prefix(session, "00") == {h("00")}
    assert references.referenced_with_prefix(session, "01") == set()
    with pytest.raises(ValueError, match="prefix"):
        references.referenced_with_prefix(session, "a%")


def test_licences_named_only_by_the_audit_trail(session: Session, fleet: Fleet) -> None:
    first, second, third = h("ab", "1"), h("ab", "2"), h("cd", "3")
    registry.set_driver_licence(session, fleet.driver_id, first)
    registry.set_driver_licence(session, fleet.driver_id, second)  # first: named as "before" only
    driver = registry.add_driver(session, carrier_id=fleet.carrier_id, name="Zhao", licence_sha256=third)
    registry.set_driver_licence(session, driver.id, None)  # third: named by driver.add and "before"
    session.commit()
    never = h("ab", "9")
    assert references.referenced_with_prefix(session, "ab") == {second}
    assert references.named_by_audit_trail(session, [first, third, never]) == {first, third}
    assert references.named_by_audit_trail(session, []) == set()
    many = [f"{n:064x}" for n in range(1200)] + [first]  # more than one chunk of IN (…)
    assert references.named_by_audit_trail(session, many) == {first}
