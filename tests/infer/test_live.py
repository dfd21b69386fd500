"""live.py: a file or stdin as a stream (no sound card here), the device errors, the loopback
latency measurement's arithmetic."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from rvc.infer import load_converter
from rvc.infer.live import LiveError, run
from rvc.infer.live_devices import loopback_delay
from rvc.infer.streaming import StreamingConverter, StreamOptions, convert_stream
from tests.conftest import compose, write
from tests.infer.conftest import voice16k

ROOT = Path(__file__).resolve().parents[2]


def _live_cfg(tmp_path: Path, voice: Path, *overrides: str):
    return compose("live", [f"voice={voice}", f"paths.root={tmp_path}", "f0=pm",
                            "index_rate=0", "realtime=false", *overrides])  # fmt: skip


def _portaudio() -> bool:
    try:
        import sounddevice  # noqa: F401
    except OSError:
        return False
    return True


def test_a_file_streams_to_an_aligned_file_of_its_length(tmp_path, voice_files, quiet):
    x = voice16k(3.0)
    src = write(tmp_path / "speech.wav", x, 16000)
    out = tmp_path / "live" / "out.wav"
    res = run(_live_cfg(tmp_path, voice_files / "v.pth", f"input={src}", f"output={out}",
                        "stream.block_s=0.1", "stream.threshold_db=-120"))  # fmt: skip
    y, sr = sf.read(out, dtype="float32")
    assert res.output == out and sr == 40000 and len(y) == len(x) * 40000 // 16000
    assert res.stats["blocks"] >= 22 and res.latency_s == pytest.approx(0.1 + 0.05 + 0.01)
    # the same as streaming the array through a StreamingConverter of the same options
    conv = load_converter(voice_files / "v.pth", index=None, f0="pm")
    from rvc.infer import ConvertOptions
    from rvc.infer.run import load_input

    ref = convert_stream(
        StreamingConverter(conv, ConvertOptions(index_rate=0.0),
                           StreamOptions(block_s=0.1, threshold_db=-120.0)), load_input(src))  # fmt: skip
    np.testing.assert_allclose(y, ref, atol=1e-6)
    assert not list(out.parent.glob(".*.part"))  # written to a temp name, then renamed


def test_stdin_to_stdout_through_live_py(tmp_path, voice_files):
    x = voice16k(2.0)
    cmd = [sys.executable, str(ROOT / "live.py"), f"voice={voice_files / 'v.pth'}", "input=-",
           "output=-", "f0=pm", "index_rate=0", f"paths.root={tmp_path}", "meter=false"]  # fmt: skip
    done = subprocess.run(cmd, input=x.astype(np.float32).tobytes(), capture_output=True,
                          cwd=tmp_path, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    y = np.frombuffer(done.stdout, dtype=np.float32)
    # raw stdout keeps the pipeline's delay (crossfade + search = 60 ms) at its start
    assert len(y) == len(x) * 40000 // 16000 + 6 * 400 and np.isfinite(y).all()
    assert np.abs(y).max() > 0.01 and b"latency 310 ms" in done.stdout + done.stderr


def test_list_devices_is_a_list_or_one_line_naming_portaudio(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "live.py"), "--list-devices"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)  # fmt: skip
    assert "Traceback" not in done.stderr
    if _portaudio():
        assert done.returncode == 0
    else:  # this machine: sounddevice installed, its PortAudio library not
        assert done.returncode == 1 and "libportaudio2" in done.stderr
        assert len(done.stderr.strip().splitlines()) <= 2


@pytest.mark.skipif(_portaudio(), reason="PortAudio is installed: devices may exist")
def test_a_device_without_portaudio_is_a_live_error(tmp_path, voice_files):
    with pytest.raises(LiveError, match="PortAudio is not installed"):
        run(_live_cfg(tmp_path, voice_files / "v.pth", f"output={tmp_path / 'o.wav'}"))


def test_live_py_with_effects_and_formant_writes_an_aligned_file(tmp_path, voice_files, quiet):
    x = voice16k(2.0)
    src = write(tmp_path / "speech.wav", x, 16000)
    out = tmp_path / "fx.wav"
    res = run(_live_cfg(tmp_path, voice_files / "v.pth", f"input={src}", f"output={out}",
                        "effects=hall", "formant=2", "stream.threshold_db=-120"))  # fmt: skip
    y, _ = sf.read(out, dtype="float32")
    assert len(y) == len(x) * 40000 // 16000 and np.isfinite(y).all() and np.abs(y).max() > 0.01
    assert res.latency_s == pytest.approx(0.25 + 0.05 + 0.01 + 0.05)  # + the formant shifter
    with pytest.raises(LiveError, match="unknown effect"):
        run(_live_cfg(tmp_path, voice_files / "v.pth", f"input={src}", f"output={out}",
                      "effects.chain=[{name: phaser}]"))  # fmt: skip


def test_bad_input_and_options_are_live_errors(tmp_path, voice_files):
    with pytest.raises(LiveError, match="no such file"):
        run(_live_cfg(tmp_path, voice_files / "v.pth", f"input={tmp_path / 'nope.wav'}",
                      f"output={tmp_path / 'o.wav'}"))  # fmt: skip
    with pytest.raises(LiveError, match="block_s"):
        run(_live_cfg(tmp_path, voice_files / "v.pth", "stream.block_s=3"))


def test_loopback_delay_finds_the_echo_and_says_when_there_is_none():
    rate = 48000
    rng = np.random.default_rng(0)
    click = np.zeros(rate, dtype=np.float32)
    click[4800:5040] = np.sin(2 * np.pi * 1000 * np.arange(240) / rate)
    echo = np.zeros_like(click)
    echo[4800 + 1234 : 5040 + 1234] = 0.3 * click[4800:5040]
    echo += 0.01 * rng.standard_normal(rate).astype(np.float32)
    assert loopback_delay(click, echo, rate) == pytest.approx(1234 / rate)
    with pytest.raises(LiveError, match="no echo"):
        loopback_delay(click, np.zeros_like(click), rate)


@pytest.fixture
def pulse_loopback(tmp_path):
    """A PulseAudio server of the test's own with a null sink as the default output and its
    monitor as the default input: a software loopback, no sound card (Debian `pulseaudio`,
    `libportaudio2`; PortAudio reaches it through ALSA's `pulse` device)."""
    if shutil.which("pulseaudio") is None or not _portaudio():
        pytest.skip("needs pulseaudio and libportaudio2 (apt install pulseaudio libportaudio2)")
    env = {**os.environ, "PULSE_RUNTIME_PATH": str(tmp_path / "pulse"), "HOME": str(tmp_path)}
    subprocess.run(["pulseaudio", "--daemonize=yes", "-n", "--exit-idle-time=-1",
                    "--load=module-null-sink sink_name=rvc_loop",
                    "--load=module-native-protocol-unix", "--load=module-always-sink"],
                   env=env, check=True, capture_output=True, timeout=30)  # fmt: skip
    try:
        for args in (["set-default-sink", "rvc_loop"], ["set-default-source", "rvc_loop.monitor"]):
            subprocess.run(["pactl", *args], env=env, check=True, timeout=30)
        yield env
    finally:
        subprocess.run(["pulseaudio", "--kill"], env=env, timeout=30)


@pytest.mark.slow
def test_devices_through_a_pulseaudio_loopback(tmp_path, voice_files, pulse_loopback):
    base = [sys.executable, str(ROOT / "live.py"), f"voice={voice_files / 'v.pth'}", "f0=pm",
            f"paths.root={tmp_path}", "input_device=pulse", "output_device=pulse"]  # fmt: skip
    done = subprocess.run([*base, "measure_latency=true"], env=pulse_loopback, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    m = re.search(r"devices (\d+) ms round trip .* = (\d+) ms end to end", done.stdout)
    assert m and 0 < int(m[1]) < 1000 and int(m[2]) == int(m[1]) + 310
    # a file played to the device at real time, then the microphone (the monitor) to a file
    src = write(tmp_path / "speech.wav", voice16k(2.0), 16000)
    done = subprocess.run([*base, f"input={src}", "stream.block_s=0.5"], env=pulse_loopback,
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0 and "streamed 2.2 s" in done.stdout, done.stderr[-2000:]
    rec = subprocess.Popen([*base, f"output={tmp_path / 'mic.wav'}"], env=pulse_loopback,
                           cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(20)  # the model loads, warms up, then records the (silent) monitor
    rec.send_signal(signal.SIGINT)  # Ctrl-C: a clean stop, the file written
    out, err = rec.communicate(timeout=60)
    assert rec.returncode == 0 and "Traceback" not in err, err[-2000:]
    y, sr = sf.read(tmp_path / "mic.wav")
    assert sr == 40000 and len(y) > 0 and "streamed" in out
