"""People who sign in to the dashboard: argon2id hashes, roles, sessions ended by a new password."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from sqlalchemy.orm import Session

from compliance.store import audit, users
from compliance.store.errors import DuplicateUser, InvalidUser, UnknownCarrier, UnknownUser
from compliance.store.models import Role
from tests.store.samples import Fleet

PASSWORD = "a long enough password"


def test_a_user_signs_in_with_the_password_and_only_with_it(session: Session, fleet: Fleet) -> None:
    user = users.add_user(
        session, username=" Li.Wei@ACME ", password=PASSWORD, role="reviewer", carrier_id=fleet.carrier_id
    )
    session.commit()
    assert user.username == "li.wei@acme" and user.role is Role.REVIEWER
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    assert users.authenticate(session, "LI.WEI@acme", PASSWORD).id == user.id
    assert user.last_login_at is not None
    assert users.authenticate(session, "li.wei@acme", PASSWORD + "!") is None
    assert users.authenticate(session, "nobody", PASSWORD) is None
    # The audit trail names the change, never the hash.
    (added,) = audit.list_events(session, subject_type="user", subject_id=user.id)
    assert added.action == "user.add" and "password" not in str(added.after)


def test_a_new_password_or_disabling_ends_old_sessions(session: Session, fleet: Fleet) -> None:
    user = users.add_user(session, username="ops", password=PASSWORD, role="admin", carrier_id=None)
    version = user.session_version
    users.set_password(session, "ops", "another long password")
    assert user.session_version == version + 1
    assert users.authenticate(session, "ops", PASSWORD) is None
    assert users.authenticate(session, "ops", "another long password") is not None
    users.set_active(session, "ops", False)
    assert user.session_version == version + 2
    assert users.authenticate(session, "ops", "another long password") is None


def test_a_weaker_hash_is_replaced_at_sign_in(session: Session, fleet: Fleet) -> None:
    user = users.add_user(session, username="old", password=PASSWORD, role="viewer", carrier_id=fleet.carrier_id)
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    user.password_hash = weak
    session.flush()
    assert users.authenticate(session, "old", PASSWORD) is not None
    assert user.password_hash != weak and not PasswordHasher().check_needs_rehash(user.password_hash)


@pytest.mark.parametrize(
    ("username", "password", "error"),
    [
        ("machine", PASSWORD, InvalidUser),  # the audit trail's name for the checks
        ("system", PASSWORD, InvalidUser),
        ("has space", PASSWORD, InvalidUser),
        ("", PASSWORD, InvalidUser),
        ("short.pw", "tooshort", InvalidUser),
    ],
)
def test_bad_users_are_refused(session: Session, username: str, password: str, error: type) -> None:
    with pytest.raises(error):
        users.add_user(session, username=username, password=password, role="viewer", carrier_id=None)


def test_names_are_unique_and_carriers_must_exist(session: Session, fleet: Fleet) -> None:
    users.add_user(session, username="twice", password=PASSWORD, role="viewer", carrier_id=None)
    with pytest.raises(DuplicateUser):
        users.add_user(session, username="TWICE", password=PASSWORD, role="viewer", carrier_id=None)
    with pytest.raises(UnknownCarrier):
        users.add_user(session, username="lost", password=PASSWORD, role="viewer", carrier_id=9999)
    with pytest.raises(UnknownUser):
        users.set_password(session, "nobody", PASSWORD)
    with pytest.raises(ValueError):
        users.add_user(session, username="x", password=PASSWORD, role="superuser", carrier_id=None)


def test_roles_include_the_ones_below() -> None:
    assert Role.ADMIN.allows(Role.REVIEWER) and Role.ADMIN.allows(Role.VIEWER)
    assert Role.REVIEWER.allows(Role.VIEWER) and not Role.REVIEWER.allows(Role.ADMIN)
    assert not Role.VIEWER.allows(Role.REVIEWER)


def test_a_users_language_is_one_of_the_dashboards_and_its_change_is_on_record(session: Session, fleet: Fleet) -> None:
    with pytest.raises(InvalidUser, match="language must be one of zh-CN, en"):
        users.add_user(session, username="fr", password=PASSWORD, role="viewer", carrier_id=None, language="fr")
    user = users.add_user(session, username="wang", password=PASSWORD, role="viewer", carrier_id=None, language="en")
    version = user.session_version
    users.set_language(session, user.id, "zh-CN", actor="wang")
    assert user.language == "zh-CN" and user.session_version == version  # still signed in
    users.set_language(session, user.id, "zh-CN", actor="wang")  # no change: nothing recorded
    users.set_language(session, user.id, None, actor="cli")  # follow the browser
    with pytest.raises(InvalidUser):
        users.set_language(session, user.id, "de", actor="wang")
    with pytest.raises(UnknownUser):
        users.set_language(session, 999_999, "en", actor="wang")
    changes = audit.list_events(session, subject_type="user", subject_id=user.id, action="user.language")
    assert [(e.actor, e.before, e.after) for e in changes] == [
        ("wang", {"language": "en"}, {"language": "zh-CN"}),
        ("cli", {"language": "zh-CN"}, {"language": None}),
    ]
