"""How the command-line tests run ``compliance``: in-process through typer's runner, and what a
one-line error (exit code 2, no traceback) looks like."""

from __future__ import annotations

from typer.testing import CliRunner

from compliance.cli import app

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def assert_one_line_error(code: int, stderr: str, *fragments: str) -> None:
    assert code == 2, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error:"), stderr
    message = " ".join(lines)  # rich may fold a long line to the terminal's width
    for fragment in fragments:
        assert fragment in message


def run_words(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    # rich folds long lines to the terminal's width: compare words, not line breaks.
    return result.exit_code, " ".join(result.stdout.split()), " ".join(result.stderr.split())
