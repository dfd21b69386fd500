"""Base (pretrained) G/D files: Applio's tensor names and shapes, the file layout, the card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rvc.io.base_model import CARD, base_file_names, base_state, save_base_model
from rvc.io.checkpoints import ArchitectureMismatchError
from rvc.io.pretrained import PretrainedPaths, load_pretrained
from tests.conftest import compose

FIXTURE = Path(__file__).parent / "fixtures" / "base_layout.json"
CASES = json.loads(FIXTURE.read_text())["cases"]
VOCODER = {"HiFi-GAN": "hifigan", "RefineGAN": "refinegan"}


def _gan(*overrides: str):
    from rvc.train.step import build_gan

    return build_gan(compose("train", ["name=x", *overrides]))


@pytest.mark.parametrize("case", sorted(CASES))
def test_base_state_has_applios_names_and_shapes(case):
    """What a strict `load_state_dict` in Applio's train.py needs, for the real-size networks:
    every name (RVC's weight_g/weight_v), nothing more, every shape (fixture: make_base_layout.py)."""
    ref = CASES[case]
    torch.manual_seed(0)
    gan = _gan(f"model={ref['sample_rate'] // 1000}k", f"vocoder={VOCODER[ref['vocoder']]}")
    for net, key in ((gan.generator, "generator"), (gan.discriminator, "discriminator")):
        ours = {k: list(v.shape) for k, v in base_state(net).items()}
        assert ours == dict(ref[key]), key
    g = base_state(gan.generator)
    assert any(k.startswith("enc_q.") for k in g) and g["emb_g.weight"].shape[0] == 109
    assert {v.dtype for v in g.values()} == {torch.float32}
    assert not any(".parametrizations." in k for k in g)


def test_names_are_the_published_ones():
    assert base_file_names(40000) == ("f0G40k.pth", "f0D40k.pth")
    assert base_file_names(48000, use_f0=False) == ("G48k.pth", "D48k.pth")


@pytest.mark.parametrize("half", [False, True])
def test_written_files_load_strictly_and_the_card_names_them(tmp_path, half):
    torch.manual_seed(0)
    gan = _gan("model=debug")
    files = save_base_model(
        tmp_path / "base", gan.generator, gan.discriminator, {"name": "corpus"},
        sample_rate=40000, half=half,
    )  # fmt: skip
    assert files.generator.name == "f0G40k.pth" and files.card.name == CARD
    for path, net in ((files.generator, gan.generator), (files.discriminator, gan.discriminator)):
        data = torch.load(path, map_location="cpu", weights_only=True)  # as Applio reads it
        assert set(data) == {"model"}
        dtype = torch.float16 if half else torch.float32
        assert {v.dtype for v in data["model"].values()} == {dtype}
        assert set(data["model"]) == set(base_state(net))
    card = json.loads(files.card.read_text())
    assert card["name"] == "corpus" and card["precision"] == ("fp16" if half else "fp32")
    from rvc.formats import file_sha256

    assert card["files"]["f0G40k.pth"]["sha256"] == file_sha256(files.generator)
    assert card["files"]["f0D40k.pth"]["tensors"] == len(gan.discriminator.state_dict())
    # our own strict loader takes them back: the same weights (to fp16 rounding)
    torch.manual_seed(1)
    fresh = _gan("model=debug")
    load_pretrained(PretrainedPaths(files.generator, files.discriminator), fresh.generator,
                    fresh.discriminator)  # fmt: skip
    a, b = fresh.generator.emb_g.weight, gan.generator.emb_g.weight
    assert torch.allclose(a, b, atol=1e-3 if half else 0)
    assert not [p for p in files.folder.iterdir() if p.name.startswith(".")]


def test_more_speaker_rows_than_the_run_is_a_clear_error_with_the_fix(tmp_path):
    torch.manual_seed(0)
    big = _gan("model=debug", "model.synthesizer.spk_embed_dim=121")
    files = save_base_model(tmp_path, big.generator, big.discriminator, {}, sample_rate=40000)
    with pytest.raises(
        ArchitectureMismatchError, match=r"emb_g.weight \(121, 8\).*spk_embed_dim=auto"
    ):
        load_pretrained(PretrainedPaths(files.generator), _gan("model=debug").generator)
