"""Where the in-process model's weights come from, and where judging finds them again.

A model is a local folder, or a model id downloaded once by ``pull`` from its source, the Hugging
Face Hub or ModelScope, into that source's own cache. ``resolve_local`` finds it there without
the network: judging never starts a download, and never needs the ``modelscope`` package (an
optional extra, for ``pull`` only), so ModelScope's cache is read here as modelscope lays it out.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from compliance.mllm.backends.base import MllmError
from compliance.settings import ModelSource

SOURCE_NAMES: dict[ModelSource, str] = {"huggingface": "the Hugging Face Hub", "modelscope": "ModelScope"}

# A Hugging Face snapshot folder is named by its commit; a ModelScope one by the revision asked
# for, a branch such as "master" that moves.
_COMMIT = re.compile(r"[0-9a-f]{40}")


def resolve_local(model: str, source: ModelSource = "huggingface") -> Path:
    """The folder holding ``model``: a local folder as given, or a model id's snapshot already in
    ``source``'s cache. Never downloads."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    if source == "modelscope":
        folder = modelscope_snapshot(model)
        where = f"in ModelScope's cache at {modelscope_cache_root()}"
    else:
        folder = _huggingface_snapshot(model)
        where = "in the Hugging Face cache"
    if folder is None:
        raise MllmError(
            f"the multimodal model {model!r} is not on this machine ({where}); fetch it once with "
            f"`compliance models pull --source {source}` or point COMPLIANCE_MLLM_MODEL at a local folder"
        )
    return folder


def pull(model: str, source: ModelSource) -> Path:
    """The explicit fetch step (``compliance models pull``): download the model's files once, into
    ``source``'s cache, where ``resolve_local`` finds them. A local folder needs nothing."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    if source == "modelscope":
        return _pull_modelscope(model)
    return _pull_huggingface(model)


def folder_version(folder: Path) -> str:
    """The commit of a cached Hugging Face snapshot. Otherwise a digest of the config and the weight
    files' names and sizes (hashing gigabytes of weights at every start would cost more than it
    tells), after the revision ModelScope recorded for the folder, if any: that is a branch or tag
    name, which moves, so it never stands alone."""
    if folder.parent.name == "snapshots" and _COMMIT.fullmatch(folder.name):
        return folder.name
    digest = hashlib.sha256()
    config = folder / "config.json"
    if config.is_file():
        digest.update(config.read_bytes())
    for weights in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    version = f"sha256:{digest.hexdigest()[:16]}"
    revision = _modelscope_revision(folder)
    return f"{revision}+{version}" if revision else version


def modelscope_cache_root() -> Path:
    """ModelScope's cache, as modelscope reads it: ``MODELSCOPE_CACHE``, else ~/.cache/modelscope."""
    return Path(os.environ.get("MODELSCOPE_CACHE") or Path.home() / ".cache" / "modelscope").expanduser()


def modelscope_snapshot(model_id: str, root: Path | None = None) -> Path | None:
    """The folder ``modelscope.snapshot_download(model_id, local_files_only=True)`` returns, found as
    modelscope 1.40 finds it, without the package: first the layouts of releases before 1.38, which
    it keeps using where they hold the model (models/<owner>/<name> with dots in the name written
    ``___``; hub/models/<owner>/<name> while ~/.cache/modelscope/hub was the default cache; hub/<owner>/
    <name> or <owner>/<name> before the models/ folder), then today's models/<owner>--<name>/
    snapshots/<revision>. None when it is not there."""
    owner, _, name = model_id.partition("/")
    if not owner or not name:
        return None
    root = root if root is not None else modelscope_cache_root()
    safe = name.replace(".", "___")
    current = root / "models" / f"{owner}--{name}"
    if not (_has_files(current) or _has_files(root / "models" / owner / safe)):
        # modelscope.hub.utils.utils.find_reusable_legacy_repo_dir
        for legacy in (
            root / owner / name,
            root / owner / safe,
            root / "hub" / owner / name,
            root / "hub" / owner / safe,
            root / "models" / owner / name,
        ):
            if _has_files(legacy):
                return legacy
    # modelscope_hub's DownloadManager: _find_legacy_repo_dir, then _resolve_cached_snapshot
    for legacy in (root / "models" / owner / safe, root / "hub" / "models" / owner / safe):
        if _has_files(legacy):
            return legacy
    snapshots = current / "snapshots"
    for default in ("master", "main"):
        if _has_files(snapshots / default):
            return snapshots / default
    revisions = sorted(p for p in snapshots.iterdir() if _has_files(p)) if snapshots.is_dir() else []
    if len(revisions) > 1:
        raise MllmError(
            f"ModelScope's cache holds several revisions of {model_id} ({', '.join(p.name for p in revisions)}) "
            "and none is master: set COMPLIANCE_MLLM_MODEL to the folder of the one to use"
        )
    return revisions[0] if revisions else None


def _huggingface_snapshot(model: str) -> Path | None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id=model, local_files_only=True))
    except (LocalEntryNotFoundError, ValueError, OSError):
        return None


def _pull_huggingface(model: str) -> Path:
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError

    try:
        return Path(snapshot_download(repo_id=model))
    except (OSError, HfHubHTTPError, ValueError) as exc:
        # HF_ENDPOINT (a mirror) is read by huggingface_hub itself; naming it says where we asked.
        where = f"the Hugging Face Hub at {constants.ENDPOINT}"
        raise MllmError(_not_downloaded(model, where, exc, "HF_ENDPOINT for a mirror")) from None


def _pull_modelscope(model: str) -> Path:
    try:
        from modelscope import snapshot_download
    except ImportError:
        raise MllmError(
            f"downloading {model} from ModelScope needs the modelscope package: pip install '.[modelscope]'"
        ) from None
    try:
        folder = Path(snapshot_download(model))
    except Exception as exc:  # modelscope's own errors and its HTTP client's differ between its releases
        raise MllmError(_not_downloaded(model, "ModelScope", exc)) from None
    # A later modelscope may lay its cache out anew: say so now rather than when a photo is judged.
    found = modelscope_snapshot(model)
    if found is None or found.resolve() != folder.resolve():
        raise MllmError(
            f"modelscope saved {model} at {folder}, where judging does not look for it: "
            f"set COMPLIANCE_MLLM_MODEL={folder}"
        )
    return folder


def _not_downloaded(model: str, where: str, exc: BaseException, mirror: str | None = None) -> str:
    # A hub's offline error wraps the connection error that says why; either may span lines.
    cause = exc.__cause__ or exc.__context__ or exc
    why = " ".join(f"{type(cause).__name__}: {cause}".split())
    network = f"the network ({mirror})" if mirror else "the network"
    return (
        f"could not download {model} from {where} ({why}); check {network}, "
        "or copy the model folder to this machine and set COMPLIANCE_MLLM_MODEL to it"
    )


def _modelscope_revision(folder: Path) -> str | None:
    """The revision ModelScope downloaded into ``folder``: today the snapshot folder's name under
    models/<owner>--<name>/snapshots/; before 1.38, the ``Revision`` it wrote in the folder's .mv."""
    if folder.parent.name == "snapshots" and folder.parent.parent.parent.name == "models":
        return folder.name
    record = folder / ".mv"  # "Revision:v1.0.0,CreatedAt:1718000000"
    if not record.is_file():
        return None
    for field in record.read_text(errors="replace").strip().split(","):
        key, _, value = field.partition(":")
        if key == "Revision" and value:
            return value
    return None


def _has_files(folder: Path) -> bool:
    """modelscope counts a non-empty folder as a cached model: a download it began and left makes
    an empty snapshot folder."""
    try:
        return folder.is_dir() and any(folder.iterdir())
    except OSError:
        return False
