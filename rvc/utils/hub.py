"""Resolve model files: a local path, the huggingface_hub cache, or a hub download.

Every model-weight loader goes through `resolve_file` so that offline use gives one clear
error naming the file and where to put it.
"""

from __future__ import annotations

import os
from pathlib import Path


class MissingModelFileError(FileNotFoundError):
    """A weight file is neither on disk nor downloadable (e.g. offline)."""


def resolve_file(
    repo_id: str | None,
    filename: str | None,
    local_path: str | os.PathLike | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """Return a local path to a model file.

    Order: `local_path` if given (must exist), then the huggingface_hub cache, then a download.
    """
    if local_path:
        p = Path(local_path).expanduser()
        if p.exists():
            return p
        raise MissingModelFileError(f"model file not found: {p}")
    if not repo_id or not filename:
        raise MissingModelFileError("no local path and no hub repo/filename given")

    from huggingface_hub import hf_hub_download

    try:
        # the cache first: works offline and avoids a network round trip
        return Path(
            hf_hub_download(
                repo_id, filename, revision=revision, cache_dir=cache_dir, local_files_only=True
            )
        )
    except Exception:
        pass
    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache_dir))
    except Exception as e:  # offline, hub unreachable, missing file, auth ...
        from huggingface_hub.constants import HF_HUB_CACHE

        raise MissingModelFileError(
            f"cannot get '{filename}' from the hub repo '{repo_id}' ({type(e).__name__}: {e}).\n"
            f"Offline? Download it elsewhere and either pass its local path, or put it in the "
            f"huggingface_hub cache ({cache_dir or HF_HUB_CACHE}) with "
            f"`hf download {repo_id} {filename}`."
        ) from e
