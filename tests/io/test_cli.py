"""`rvc-model info` / `export` on files built here (ours, RVC's G_*.pth, pretrained, broken)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from rvc.io.checkpoints import save_pretrained
from rvc.io.cli import describe, main
from rvc.io.voice_model import load_voice_model, read_voice_model, save_voice_model, weights_sha256
from rvc.io.weight_norm_names import to_rvc_names
from tests.io.conftest import infer, tiny_synth, write_rvc_checkpoint
from tests.models.conftest import published_discriminator

FP16_ATOL = 2e-3  # as in test_voice_model: fp16 storage moves the waveform by ~1e-4


def test_info_on_a_voice_model(tmp_path, capsys):
    net = tiny_synth()
    path = tmp_path / "voice.pth"
    meta = save_voice_model(
        path, net, net.config, model_name="Alice", epoch=5, step=50, embedder_model="contentvec"
    )
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    for text in (
        "voice model",
        "Alice",
        "40000",
        "v2",
        "HiFi-GAN",
        "contentvec",
        meta["model_hash"],
    ):
        assert text in out
    rows = describe(path)
    assert rows["epoch"] == 5 and rows["step"] == 50 and rows["F0"] == "yes"
    assert rows["parameters"] == sum(
        v.numel() for k, v in net.state_dict().items() if not k.startswith("enc_q.")
    )


def test_info_on_checkpoints_and_pretrained(tmp_path, capsys):
    net = tiny_synth(sr=32000)
    write_rvc_checkpoint(tmp_path / "G_10.pth", net, iteration=3)
    save_pretrained(tmp_path / "f0G32k.pth", net)
    with torch.device("meta"):
        d_state = published_discriminator("v2").state_dict()
    # a D checkpoint needs real tensors; zero-size copies keep names and only the shapes matter
    d_state = {k: torch.zeros(v.shape, dtype=torch.float16) for k, v in d_state.items()}
    torch.save(
        {"model": to_rvc_names(d_state), "iteration": 3, "optimizer": {}, "learning_rate": 1e-4},
        tmp_path / "D_10.pth",
    )
    g = describe(tmp_path / "G_10.pth")
    assert (g["format"], g["sample rate"], g["vocoder"], g["epoch"]) == (
        "G checkpoint",
        32000,
        "HiFi-GAN",
        3,
    )
    assert describe(tmp_path / "f0G32k.pth")["format"] == "pretrained G"
    d = describe(tmp_path / "D_10.pth")
    assert d["format"] == "D checkpoint" and d["version"].startswith("v2") and d["tensors"] == 165
    assert main(["info", str(tmp_path / "D_10.pth")]) == 0
    assert "D checkpoint" in capsys.readouterr().out


def test_info_on_a_broken_file_fails_with_one_line(tmp_path, capsys):
    (tmp_path / "broken.pth").write_bytes(b"PK\x03\x04 not really a zip")
    assert main(["info", str(tmp_path / "broken.pth")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("rvc-model: error:") and "broken.pth" in err and "\n" not in err


def test_export_our_checkpoint(tmp_path, capsys):
    net = tiny_synth()
    write_rvc_checkpoint(tmp_path / "G_200.pth", net, iteration=12)
    out = tmp_path / "models" / "alice.pth"
    argv = [
        "export",
        str(tmp_path / "G_200.pth"),
        str(out),
        "--name",
        "alice",
        "--step",
        "200",
        "--embedder",
        "contentvec",
    ]
    assert main(argv) == 0
    assert "40000 Hz" in capsys.readouterr().out
    vm = load_voice_model(out)
    assert (vm.model_name, vm.metadata["epoch"], vm.metadata["step"]) == ("alice", 12, 200)
    assert vm.metadata["embedder_model"] == "contentvec" and vm.config == net.config
    assert (infer(vm.synthesizer) - infer(net)).abs().max() < FP16_ATOL


@pytest.mark.parametrize("sr", [32000, 48000])
def test_export_rvc_webui_g_checkpoint(tmp_path, sr):
    """RVC WebUI's G_*.pth: weight_g/weight_v names written by torch.save directly."""
    net = tiny_synth(sr=sr, use_f0=sr == 48000)
    raw = {
        "model": to_rvc_names(net.state_dict()),
        "iteration": 30,
        "optimizer": {},
        "learning_rate": 1e-4,
    }
    torch.save(raw, tmp_path / "G_2333333.pth")
    assert (
        main(["export", str(tmp_path / "G_2333333.pth"), str(tmp_path / "v.pth"), "--name", "v"])
        == 0
    )
    vm = load_voice_model(tmp_path / "v.pth")
    assert (vm.sample_rate, vm.use_f0, vm.metadata["epoch"]) == (sr, sr == 48000, 30)
    assert (infer(vm.synthesizer) - infer(net)).abs().max() < FP16_ATOL


def test_export_refinegan_needs_the_rate_when_ambiguous(tmp_path, capsys):
    net = tiny_synth("RefineGAN", sr=48000)
    save_pretrained(tmp_path / "G.pth", net)
    out = tmp_path / "r.pth"
    argv = ["export", str(tmp_path / "G.pth"), str(out), "--name", "r"]
    assert main(argv) == 1
    assert "--sr" in capsys.readouterr().err and not out.exists()
    assert main([*argv, "--sr", "48000", "--vocoder", "RefineGAN"]) == 0
    vm = read_voice_model(out)
    assert (vm.sample_rate, vm.vocoder) == (48000, "RefineGAN")
    assert vm.metadata["model_hash"] == weights_sha256(vm.weights)
    assert main([*argv, "--sr", "48000", "--vocoder", "HiFi-GAN"]) == 1
    assert "RefineGAN generator" in capsys.readouterr().err


def test_console_script_runs_as_a_subprocess(tmp_path):
    net = tiny_synth()
    save_voice_model(tmp_path / "v.pth", net, net.config, model_name="sub")
    code = "import sys; from rvc.io.cli import main; sys.exit(main())"
    ok = subprocess.run(
        [sys.executable, "-c", code, "info", str(tmp_path / "v.pth")],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and "voice model" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-c", code, "info", str(tmp_path / "none.pth")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0 and "none.pth" in bad.stderr


def test_info_fails_cleanly_on_malformed_files(tmp_path, capsys):
    net = tiny_synth()
    good = tmp_path / "good.pth"
    save_voice_model(good, net, net.config, model_name="x", epoch=1, step=1)
    data = torch.load(good, weights_only=True)

    bogus_config = dict(data, config=[0] * 18)  # unbuildable network
    no_f0_flag = dict(data, f0=None)
    g_bias_only = {
        "model": {"dec.ups.0.bias": torch.zeros(4), "enc_p.emb_phone.weight": torch.zeros(4, 768)}
    }
    for name, obj in (("config", bogus_config), ("f0", no_f0_flag), ("g", g_bias_only)):
        path = tmp_path / f"{name}.pth"
        torch.save(obj, path)
        assert main(["info", str(path)]) == 1, name
        err = capsys.readouterr().err
        assert err.startswith("rvc-model: error:") and len(err.strip().splitlines()) == 1
        assert "Traceback" not in err
