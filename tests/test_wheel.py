"""Installed as a wheel (`pip install .`, not `-e`), from another directory, the package works:
its configs (the registry) travel inside it, the console scripts start, conversion by name finds
`f0="pm"` and `embedder="spectral"`, and `python -m rvc.evaluate` finds its configs.

The wheel goes into a fresh venv whose dependencies are borrowed from the test venv through a
`.pth` line (so nothing is downloaded); that line adds a plain folder, so the test venv's
editable finder is not run and `import rvc` can only find the wheel's copy.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP = {".venv", ".git", "build", "dist", "experiments", "logs", "demo_data", "__pycache__"}


def _run(cmd: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["HF_HUB_OFFLINE"] = "1"
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, **kw)
    assert out.returncode == 0, f"{' '.join(cmd)}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory) -> Path:
    """A fresh venv holding only the wheel of this tree (dependencies borrowed)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(
        ROOT,
        src,
        ignore=lambda d, names: [n for n in names if n in SKIP or n.endswith(".egg-info")],
    )
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
          "-w", str(tmp / "dist"), str(src)], cwd=tmp)  # fmt: skip
    (wheel,) = (tmp / "dist").glob("rvc_lightning-*.whl")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp)
    _run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
          "-q", "--no-deps", str(wheel)], cwd=tmp)  # fmt: skip
    (purelib,) = (venv / "lib").glob("python*/site-packages")
    (purelib / "borrowed_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return venv


def test_wheel_imports_its_own_copy_with_every_config_group(wheel_venv, tmp_path):
    script = (
        "import rvc, rvc.registry as r\n"
        "print(rvc.__file__)\n"
        "for g in ('vocoder', 'f0', 'embedder', 'index', 'device', 'model', 'slicing'):\n"
        "    assert r.names(g), g\n"
        "print(r.names('f0'))\n"
        "from rvc.infer.load import group_config\n"
        "print(group_config('f0', 'rmvpe')._target_)\n"
    )
    out = _run([str(wheel_venv / "bin" / "python"), "-c", script], cwd=tmp_path)
    first = out.stdout.splitlines()[0]
    assert str(wheel_venv) in first, f"imported {first}, not the wheel's copy"
    assert "rmvpe" in out.stdout and "RMVPE" in out.stdout


@pytest.mark.parametrize(
    "script, override",
    [("rvc-extract", "name=x"), ("rvc-train", "name=x"), ("rvc-infer", "voice=x.pth"),
     ("rvc-evaluate", "name=x")],
)  # fmt: skip
def test_console_scripts_compose_their_config(wheel_venv, tmp_path, script, override):
    out = _run([str(wheel_venv / "bin" / script), override, "--cfg", "job"], cwd=tmp_path)
    key, value = override.split("=")
    assert f"{key}: {value}" in out.stdout


def test_python_m_rvc_evaluate_finds_its_configs(wheel_venv, tmp_path):
    out = _run([str(wheel_venv / "bin" / "python"), "-m", "rvc.evaluate", "--help"], cwd=tmp_path)
    assert "vocoder:" in out.stdout or "f0:" in out.stdout


def test_load_converter_by_name_converts_from_the_wheel(wheel_venv, tmp_path):
    """A tiny voice model converts through `load_converter(f0="pm", embedder="spectral")`."""
    script = f"""
import sys
import numpy as np, rvc
assert {str(wheel_venv)!r} in rvc.__file__, rvc.__file__
sys.path.append({str(ROOT)!r})  # the tests' helpers only; rvc itself is already the wheel's
from tests.infer.conftest import save_ours, voice16k
from rvc import load_converter
save_ours(__import__('pathlib').Path('v.pth'))
conv = load_converter('v.pth', index=None, f0='pm', embedder='spectral')
y = conv.convert(voice16k(2.0), progress=False)
assert np.isfinite(y).all() and y.std() > 0
print('converted', len(y))
"""
    out = _run([str(wheel_venv / "bin" / "python"), "-c", script], cwd=tmp_path)
    assert "converted" in out.stdout


@pytest.mark.slow
def test_readme_demo_runs_from_the_wheel_in_another_folder(wheel_venv, tmp_path):
    """The README's main job, through the installed console scripts, in a folder that is not
    the repository: a .pth, an .index and a converted file."""
    bin_ = wheel_venv / "bin"
    py = str(bin_ / "python")
    _run([py, "-m", "rvc.demo.voice", "demo_data/voice"], cwd=tmp_path)
    _run([str(bin_ / "rvc-extract"), "experiment=demo"], cwd=tmp_path)
    _run([str(bin_ / "rvc-train"), "experiment=demo", "pretrained=none"], cwd=tmp_path)
    _run([py, "-m", "rvc.demo.voice", "demo_data/other", "--speakers", "2", "--minutes", "0.2",
          "--seed", "1"], cwd=tmp_path)  # fmt: skip
    _run([str(bin_ / "rvc-infer"), "voice=experiments/demo/demo.pth", "input=demo_data/other/1",
          "f0=fcpe", "pitch=-3"], cwd=tmp_path)  # fmt: skip
    demo = tmp_path / "experiments" / "demo"
    assert (demo / "demo.pth").is_file() and (demo / "demo.index").is_file()
    assert list((tmp_path / "converted").glob("*.wav"))
