"""``compliance audit`` as an operator meets it: an audit run with a progress bar and its diff;
bad arguments (to audit and to worker) as one-line errors."""

from __future__ import annotations

from pathlib import Path

from compliance.photos import read_photo_file
from compliance.service.intake import Upload, accept
from compliance.settings import get_settings
from compliance.store import Store, verdicts
from compliance.verdicts import Outcome, ReasonCode
from tests.cli.helpers import run_words as run
from tests.service.conftest import PASSING_PHOTO, SAMPLES
from tests.workers.test_tasks import _old_verdict


def test_audit_inline_with_a_progress_bar_and_the_diff(isolated_env: Path) -> None:
    assert run("registry", "add-carrier", "ACME")[0] == 0
    assert run("registry", "add-vehicle", "ACME", "皖AUJ299", "--color", "blue")[0] == 0
    code, _, stderr = run(
        "registry", "add-driver", "ACME", "A", "--licence", str(SAMPLES / "licence_a.jpg"), "--ref", "A-1"
    )
    assert code == 0, stderr
    # A photo stored and decided last year, by an older model.
    settings = get_settings()
    store = Store.open(settings)
    photo = read_photo_file(PASSING_PHOTO, **settings.photo_limits)
    accepted = accept(store, photo, Upload(carrier="ACME", driver="A-1", plate="皖AUJ299"))
    with store.sessions() as s, s.begin():
        verdicts.record_verdict(s, accepted.submission_id, _old_verdict(Outcome.FAIL, (ReasonCode.FACE_MISMATCH,)))

    code, stdout, stderr = run("audit", "start", "--carrier", "ACME", "--inline")
    assert code == 0, stderr
    assert "auditing" in stderr and "1/1" in stderr  # the progress bar
    assert "1 re-judged, 0 failed, 0 pending; 1 changed" in stdout
    assert "FAIL" in stdout and "PASS" in stdout and "FACE_MISMATCH" in stdout
    job_id = stderr.split("audit ")[1].split(":")[0]
    code, stdout, _ = run("audit", "status", job_id)
    assert code == 0 and "done" in stdout and "1 changed" in stdout

    # Audited again with the same models: nothing changes.
    code, stdout, _ = run("audit", "start", "--carrier", "ACME", "--inline")
    assert code == 0 and "0 changed" in stdout


def test_audit_inline_with_a_cascade_keeps_what_the_baseline_settles(isolated_env: Path, dev_dir: Path) -> None:
    from compliance.photos import receive_photo
    from compliance.store import submissions
    from tests.composites import PLATE, driver_by_vehicle, jpeg

    assert run("registry", "add-carrier", "ACME")[0] == 0
    assert run("registry", "add-vehicle", "ACME", PLATE)[0] == 0
    code, _, stderr = run(
        "registry", "add-driver", "ACME", "A", "--licence", str(SAMPLES / "licence_a.jpg"), "--ref", "A-1"
    )
    assert code == 0, stderr
    settings = get_settings()
    store = Store.open(settings)
    photo = receive_photo(jpeg(driver_by_vehicle(dev_dir)), **settings.photo_limits)
    accepted = accept(store, photo, Upload(carrier="ACME", driver="A-1", plate=PLATE))
    with store.sessions() as s, s.begin():
        verdicts.record_verdict(s, accepted.submission_id, _old_verdict(Outcome.FAIL, (ReasonCode.FACE_MISMATCH,)))

    # No MLLM on this machine: the baseline settles this photo, so none is needed.
    code, stdout, stderr = run("audit", "start", "--carrier", "ACME", "--pipeline", "cascade", "--inline")
    assert code == 0, stderr
    assert "1 re-judged, 0 failed, 0 pending; 1 changed" in stdout
    with store.sessions() as s:
        current = submissions.get_submission(s, accepted.submission_id).current_verdict
        assert current is not None and current.pipeline == "cascade" and current.outcome is Outcome.PASS
        assert current.judgment is not None
        assert current.judgment.data["provenance"]["cascade"]["path"] == "settled_by_baseline"


def test_bad_arguments_are_one_line_errors(isolated_env: Path) -> None:
    code, _, stderr = run("worker", "--queue", "gpu")
    assert code == 2 and "unknown queue 'gpu'" in stderr
    assert run("registry", "add-carrier", "ACME")[0] == 0
    code, _, stderr = run("audit", "start", "--carrier", "ACME", "--since", "last week")
    assert code == 2 and "ISO 8601" in stderr
    code, _, stderr = run("audit", "start", "--carrier", "ACME", "--pipeline", "gpt")
    assert code == 2 and "unknown pipeline" in stderr
    code, _, stderr = run("audit", "status", "no-such-job")
    assert code == 2 and "no audit job" in stderr
