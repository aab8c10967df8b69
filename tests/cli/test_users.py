"""`compliance users …`: adding people, their passwords, and errors as one line."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from compliance.cli import app
from compliance.settings import get_settings
from compliance.store import Store, users

runner = CliRunner()


def run(*args: str, stdin: str | None = None):
    return runner.invoke(app, list(args), input=stdin)


def test_users_are_added_listed_and_sign_in(isolated_env: Path) -> None:
    assert run("registry", "add-carrier", "ACME").exit_code == 0
    added = run("users", "add", "Li.Wei", "--role", "reviewer", "--carrier", "ACME", "--password-stdin",
                stdin="a long password\n")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "li.wei (reviewer, ACME)" in added.output and "a long password" not in added.output
    made = run("users", "add", "ops", "--role", "admin", "--all-carriers", "--generate-password")
    assert made.exit_code == 0, made.output
    password = made.output.split("password: ", 1)[1].split()[0]
    listed = run("users", "list")
    assert "li.wei" in listed.output and "ops" in listed.output and "all" in listed.output
    store = Store.open(get_settings())
    with store.sessions() as s, s.begin():
        assert users.authenticate(s, "ops", password) is not None
        assert users.authenticate(s, "li.wei", "a long password") is not None
    assert run("users", "disable", "ops").exit_code == 0
    with store.sessions() as s, s.begin():
        assert users.authenticate(s, "ops", password) is None
    assert run("users", "set-password", "li.wei", "--password-stdin", stdin="another long one\n").exit_code == 0
    with store.sessions() as s, s.begin():
        assert users.authenticate(s, "li.wei", "another long one") is not None
    store.engine.dispose()


def test_bad_users_are_one_line_errors(isolated_env: Path) -> None:
    run("registry", "add-carrier", "ACME")
    for args, message in (
        (("users", "add", "x", "--role", "god", "--all-carriers"), "role must be one of"),
        (("users", "add", "x", "--role", "viewer"), "--carrier CODE) or --all-carriers"),
        (("users", "add", "x", "--carrier", "ACME", "--all-carriers"), "--carrier CODE) or --all-carriers"),
        (("users", "add", "machine", "--all-carriers", "--generate-password"), "reserved"),
        (("users", "add", "x", "--carrier", "NOPE", "--generate-password"), "no carrier 'NOPE'"),
        (("users", "set-password", "ghost", "--generate-password"), "no user named 'ghost'"),
        (("users", "add", "x", "--all-carriers", "--lang", "fr", "--generate-password"), "--lang must be one of"),
        (("users", "set-lang", "ghost", "en"), "no user named 'ghost'"),
    ):
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output
    short = run("users", "add", "y", "--all-carriers", "--password-stdin", stdin="short\n")
    assert short.exit_code == 2 and "at least 10 characters" in short.output


def test_a_users_dashboard_language_is_set_at_add_and_changed_later(isolated_env: Path) -> None:
    added = run("users", "add", "wang", "--all-carriers", "--lang", "en", "--generate-password")
    assert added.exit_code == 0, added.output
    assert run("users", "add", "zhao", "--all-carriers", "--generate-password").exit_code == 0
    store = Store.open(get_settings())
    with store.sessions() as s:
        assert users.find_user(s, "wang").language == "en"
        assert users.find_user(s, "zhao").language is None  # follows the browser
    assert "browser" in run("users", "list").output
    assert run("users", "set-lang", "wang", "zh-CN").exit_code == 0
    with store.sessions() as s:
        assert users.find_user(s, "wang").language == "zh-CN"
    assert run("users", "set-lang", "wang", "browser").exit_code == 0
    refused = run("users", "set-lang", "wang", "de")
    assert refused.exit_code == 2 and "language must be one of" in refused.output
    with store.sessions() as s:
        assert users.find_user(s, "wang").language is None
    store.engine.dispose()
