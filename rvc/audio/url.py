"""Fetch the audio of a URL (YouTube, SoundCloud, a direct media link, ...) with yt-dlp.

Downloads are cached per output folder: a sidecar `.url-<hash>.json` records url → file, so
asking for the same URL again returns the earlier file without touching the network.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from rvc.errors import RVCError
from rvc.formats import short_sha256
from rvc.utils.atomic import write_json

log = logging.getLogger(__name__)


class DownloadError(RVCError):
    """A URL could not be downloaded (the message names the URL and the problem)."""


def is_url(s: str | os.PathLike) -> bool:
    """True for http(s) URLs with a host (local paths, even existing ones, are not URLs)."""
    u = urlparse(os.fspath(s))
    return u.scheme in ("http", "https") and bool(u.netloc)


def _key(url: str) -> str:
    return short_sha256(url.strip().encode("utf-8"))


def _sidecar(out_dir: Path, url: str) -> Path:
    return out_dir / f".url-{_key(url)}.json"


def cached_download(url: str, out_dir: str | os.PathLike) -> Path | None:
    """The file an earlier `download(url, out_dir)` produced, if it is still there."""
    side = _sidecar(Path(out_dir), url)
    try:
        meta = json.loads(side.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    f = Path(out_dir) / meta.get("file", "")
    return f if meta.get("url") == url.strip() and f.is_file() and f.stat().st_size > 0 else None


def _log_progress(d: dict[str, Any]) -> None:
    if d.get("status") == "finished":
        log.info("downloaded %s (%s bytes)", d.get("filename"), d.get("total_bytes", "?"))


def download(
    url: str,
    out_dir: str | os.PathLike,
    progress: Callable[[dict[str, Any]], None] | None = None,
    timeout: float = 30.0,
) -> Path:
    """Download the best audio-only format of `url` into `out_dir` (cached; atomic) and return it.

    `progress` receives yt-dlp's progress dicts (`status`, `downloaded_bytes`, ...). Playlists
    are not expanded: a playlist URL downloads its single selected item or fails.
    """
    url = url.strip()
    if not is_url(url):
        raise ValueError(f"not an http(s) URL: '{url}'")
    out = Path(out_dir)
    hit = cached_download(url, out)
    if hit is not None:
        log.info("%s: using cached download %s", url, hit)
        return hit
    try:
        import yt_dlp
    except ImportError as e:
        raise ImportError(
            "downloading from URLs needs the optional 'yt-dlp' package: "
            "pip install 'rvc-lightning[url]'"
        ) from e

    out.mkdir(parents=True, exist_ok=True)
    key = _key(url)
    # download into a private temp folder beside the target, then rename: a killed run never
    # leaves a half-written file under the final name
    tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=out))
    try:
        opts = {
            "format": "bestaudio/best",
            "noplaylist": True,
            "quiet": True,
            "no_warnings": True,
            "noprogress": True,
            "restrictfilenames": True,
            "socket_timeout": timeout,
            "outtmpl": str(tmp / f"%(title).60B-{key[:8]}.%(ext)s"),
            "progress_hooks": [progress or _log_progress],
            "cachedir": False,
        }
        try:
            with yt_dlp.YoutubeDL(opts) as ydl:
                info = ydl.extract_info(url, download=True)
        except yt_dlp.utils.DownloadError as e:
            raise DownloadError(f"{url}: download failed: {e}") from e
        files = [p for p in tmp.iterdir() if p.is_file() and not p.name.endswith(".part")]
        if not files:
            raise DownloadError(f"{url}: yt-dlp finished but wrote no file")
        src = max(files, key=lambda p: p.stat().st_size)
        dest = out / src.name
        os.replace(src, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    meta = {
        "url": url,
        "file": dest.name,
        "title": (info or {}).get("title"),
        "id": (info or {}).get("id"),
    }
    write_json(_sidecar(out, url), meta)
    return dest
