"""Resolve model files: a local path, the huggingface_hub cache, or a hub download.

Every model-weight loader goes through `resolve_file` so that offline use gives one clear
error naming the file and where to put it.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from rvc.errors import RVCError

# a probe's answer per endpoint, so a run that looks for many files asks the network once
_REACHABLE: dict[str, str | None] = {}
_TRUE = {"1", "on", "yes", "true"}


class MissingModelFileError(RVCError, FileNotFoundError):
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
    # huggingface_hub retries an unreachable host for ~30 s per file: ask once, quickly
    offline = hub_unreachable()
    if offline:
        raise _missing(repo_id, filename, cache_dir, offline)
    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache_dir))
    except Exception as e:  # missing file, auth, a network that fails mid-way ...
        raise _missing(repo_id, filename, cache_dir, f"{type(e).__name__}: {e}") from e


def _missing(
    repo_id: str, filename: str, cache_dir: str | os.PathLike | None, why: str
) -> MissingModelFileError:
    from huggingface_hub.constants import HF_HUB_CACHE

    return MissingModelFileError(
        f"cannot get '{filename}' from the hub repo '{repo_id}' ({why}).\n"
        f"Offline? Download it elsewhere and either pass its local path, or put it in the "
        f"huggingface_hub cache ({cache_dir or HF_HUB_CACHE}) with "
        f"`hf download {repo_id} {filename}`."
    )


def hub_unreachable(timeout: float = 2.0) -> str | None:
    """Why the hub cannot be reached now (offline mode, no DNS, no connection), or None.

    Honours HF_HUB_OFFLINE read at call time (huggingface_hub reads it once, at import).
    """
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE:
        return "offline: HF_HUB_OFFLINE is set"
    from huggingface_hub import constants

    endpoint = os.environ.get("HF_ENDPOINT") or constants.ENDPOINT
    if endpoint not in _REACHABLE:
        _REACHABLE[endpoint] = _probe(endpoint, timeout)
    return _REACHABLE[endpoint]


def _probe(endpoint: str, timeout: float) -> str | None:
    url = urlparse(endpoint)
    host = url.hostname or endpoint
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except socket.gaierror as e:
        return f"offline: cannot resolve {host} ({e.strerror or e})"
    except OSError as e:  # refused, unreachable network, timeout
        return f"offline: cannot connect to {host}:{port} ({e.strerror or type(e).__name__})"
