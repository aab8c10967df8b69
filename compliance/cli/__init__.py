"""The ``compliance`` command line (typer + rich): one module per command group, the console and
one-line errors in ``console``. Errors end here as one line and exit code 2.

Commands import what they use when they run, so that ``compliance --help`` loads no model, web
stack or broker client.
"""

from __future__ import annotations

import sys

import typer

from compliance.cli import (
    audits,
    blobs,
    database,
    demo,
    evaluation,
    judging,
    keys,
    models,
    registry,
    service,
    training,
    users,
)

app = typer.Typer(
    help="Checks drivers' photos by their vehicles (人车合照).", no_args_is_help=True, add_completion=False
)

for _command in (judging.check, judging.submit, evaluation.evaluate, evaluation.compose, judging.demo):
    app.command("eval" if _command is evaluation.evaluate else None)(_command)
app.command("demo-data")(demo.demo_data)
for _group, _name in (
    (database.db_app, "db"),
    (blobs.blobs_app, "blobs"),
    (registry.registry_app, "registry"),
    (models.models_app, "models"),
    (training.export_app, "export"),
    (training.train_app, "train"),
    (users.users_app, "users"),
    (keys.keys_app, "keys"),
    (audits.audit_app, "audit"),
):
    app.add_typer(_group, name=_name)
for _command in (service.api, service.worker, service.sweeper, service.serve):
    app.command()(_command)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
