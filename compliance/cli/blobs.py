"""``compliance blobs``: the photo store (a local folder or an S3-compatible bucket)."""

from __future__ import annotations

from typing import Annotated

import typer

from compliance.cli.console import UserError, err, out, progress_bar, settings_for, user_errors

blobs_app = typer.Typer(help="The photo store: a local folder or an S3-compatible bucket.", no_args_is_help=True)


@blobs_app.command("migrate")
def migrate(
    to: Annotated[str, typer.Option("--to", help="the target store: s3://bucket/prefix (or file:///abs/path)")],
    source: Annotated[
        str | None,
        typer.Option("--from", help="the source store URL (default: COMPLIANCE_BLOB_URL, else COMPLIANCE_BLOB_DIR)"),
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", min=1, max=64, help="photos copied at once")] = 8,
) -> None:
    """Copy every photo into another store, verifying each by its SHA-256 once there. Resumable:
    what the target already holds is skipped, so run it again after an interruption. Credentials
    and endpoint for S3 come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL,
    AWS_REGION (and AWS_ALLOW_HTTP=true for a plain-http endpoint). Then set COMPLIANCE_BLOB_URL."""
    from compliance.service.photo_copy import copy_photos, count_photos
    from compliance.store.blobs import open_photo_store, photo_store_at
    from compliance.store.errors import PhotoStoreUnavailable

    settings = settings_for()
    with user_errors():
        try:
            origin = photo_store_at(source) if source is not None else open_photo_store(settings)
            target = photo_store_at(to)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        if repr(origin) == repr(target):
            raise UserError(f"--to names the store the photos are in already: {to}")
        try:
            total = count_photos(origin)
            with progress_bar() as bar:
                task = bar.add_task("copying photos", total=total, item="")
                result = copy_photos(
                    origin, target, jobs=jobs, done=lambda sha: bar.update(task, advance=1, item=sha[:12])
                )
        except PhotoStoreUnavailable as exc:  # run it again once the store answers: it resumes
            raise UserError(f"{exc}; run it again to resume") from None
    out.print(
        f"copied {result.copied} photo(s) ({result.copied_bytes / 1e6:.1f} MB), {result.skipped} already there, "
        f"{len(result.failed)} failed",
        highlight=False,
    )
    for line in result.failed[:20]:
        err.print(f"[red]failed:[/] {line}", highlight=False)
    if result.failed:
        raise typer.Exit(code=1)
