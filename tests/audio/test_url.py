import functools
import http.server
import sys
import threading

import numpy as np
import pytest
import soundfile as sf

from rvc.audio.read import load_audio
from rvc.audio.url import DownloadError, cached_download, download, is_url


def test_is_url():
    assert is_url("https://www.youtube.com/watch?v=abc")
    assert is_url("http://127.0.0.1:8000/a.mp3")
    for s in ["a.mp3", "/data/a.wav", "C:/x.wav", "ftp://h/a.mp3", "https://", "file:///a.wav"]:
        assert not is_url(s), s


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A local HTTP server over a folder with one 3 kHz tone; records the paths it served."""
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)  # 127.0.0.1 must not go through a proxy
    root = tmp_path / "www"
    root.mkdir()
    sr = 22050
    tone = (0.5 * np.sin(2 * np.pi * 3000 * np.arange(sr) / sr)).astype(np.float32)
    sf.write(root / "tone.wav", tone, sr, subtype="PCM_16")
    served = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            served.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", served
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_download_direct_link_and_cache(server, tmp_path):
    base, served = server
    out = tmp_path / "downloads"
    events = []
    path = download(f"{base}/tone.wav", out, progress=events.append)
    assert path.parent == out and path.is_file()
    assert any(e.get("status") == "finished" for e in events)
    y, sr = load_audio(path)
    assert sr == 22050 and len(y) == 22050
    assert np.argmax(np.abs(np.fft.rfft(y))) * sr / len(y) == pytest.approx(3000, abs=2)
    # nothing half-written or temporary left behind
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".url-")) == [path.name]

    n_requests = len(served)
    assert n_requests >= 1
    assert download(f"{base}/tone.wav", out) == path
    assert cached_download(f"{base}/tone.wav", out) == path
    assert len(served) == n_requests  # second call served from the cache

    path.unlink()  # a cache entry whose file is gone downloads again
    assert download(f"{base}/tone.wav", out) == path and len(served) > n_requests


def test_download_errors(server, tmp_path, monkeypatch):
    base, _ = server
    with pytest.raises(DownloadError, match="missing.wav"):
        download(f"{base}/missing.wav", tmp_path / "d")
    assert not any((tmp_path / "d").glob(".download-*"))  # temp folder cleaned up
    with pytest.raises(ValueError, match="not an http"):
        download("song.mp3", tmp_path / "d")
    monkeypatch.setitem(sys.modules, "yt_dlp", None)
    with pytest.raises(ImportError, match=r"rvc-lightning\[url\]"):
        download(f"{base}/tone.wav", tmp_path / "e")
