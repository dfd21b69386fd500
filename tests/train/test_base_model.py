"""Base-model training: the speaker embedding sized to the store, and the round trip: a tiny
two-speaker run writes base G/D files and their card; a voice run fine-tunes from them."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from rvc.io.weight_norm_names import from_rvc_names
from rvc.train.base_model import BaseModelExport, size_speaker_embedding, speaker_rows
from rvc.train.run import TrainError, build_module, load_pretrained, run
from tests.conftest import compose, voiced_clip, write
from tests.train.conftest import STORE_OPTIONS, train_cfg


def _store(*ids: int) -> SimpleNamespace:
    recs = {f"s{i}": SimpleNamespace(speaker=i) for i in ids}
    return SimpleNamespace(slices=recs, root=Path("/corpus"))


def test_speaker_rows_keep_rvcs_109_and_grow_only_past_it():
    assert speaker_rows([]) == speaker_rows([0, 1, 108]) == 109
    assert speaker_rows([0, 150]) == 151


def test_auto_sizes_emb_g_to_the_store_and_warns_past_109(caplog):
    cfg = compose("train", ["name=x", "pretrained=none", "model.synthesizer.spk_embed_dim=auto"])
    assert size_speaker_embedding(cfg, _store(0, 3)) == 109
    assert cfg.model.synthesizer.spk_embed_dim == 109
    cfg.model.synthesizer.spk_embed_dim = "auto"
    with caplog.at_level(logging.WARNING):
        assert size_speaker_embedding(cfg, _store(0, 200)) == 201
    assert "the RVC WebUI cannot" in caplog.text
    fixed = compose("train", ["name=x"])  # a voice run: RVC's 109, checked against the ids
    assert size_speaker_embedding(fixed, _store(0, 5)) == 109
    with pytest.raises(ValueError, match="speaker id 120.*spk_embed_dim=109"):
        size_speaker_embedding(fixed, _store(0, 120))


@pytest.fixture(scope="module")
def corpus_root(tmp_path_factory) -> Path:
    """A tiny two-speaker store `experiments/corpus` (folders 0/ and 1/ of the input)."""
    from rvc.extract.run import run as extract

    root = tmp_path_factory.mktemp("corpus")
    for i, (spk, f0) in enumerate(((0, 110.0), (0, 130.0), (1, 200.0), (1, 240.0))):
        write(root / "in" / str(spk) / f"clip{i}.wav", voiced_clip(40000, f0, seed=i), 40000)
    extract(compose("extract", ["name=corpus", f"paths.root={root}", f"inputs=[{root / 'in'}]",
                                *STORE_OPTIONS, "device.num_workers=1"]))  # fmt: skip
    return root


# one epoch, validated after each batch; the recipe holds out one whole speaker and 4 slices
BASE_RUN = [
    "experiment=pretrain_base", "trainer.max_epochs=1", "trainer.val_check_interval=1",
    "data.val_slices=4", "callbacks.base_model.every_n_steps=1", "val_audio_samples=1",
    "callbacks.model_checkpoint.every_n_train_steps=2", "callbacks.voice_model=null",
    "+callbacks.evaluation._target_=rvc.eval.callback.EvaluationMetrics",
]  # fmt: skip


@pytest.mark.slow
def test_base_run_writes_files_a_voice_run_fine_tunes_from(tmp_path, corpus_root):
    out = tmp_path / "base_run"
    res = run(train_cfg(corpus_root, f"out_dir={out}", *BASE_RUN, name="corpus"))
    base = out / "base"
    g_path, d_path = base / "f0G40k.pth", base / "f0D40k.pth"
    card = json.loads((base / "model_card.json").read_text())
    assert card["speakers"] == 2 and card["speaker_ids"] == [0, 1]
    assert card["spk_embed_dim"] == 109 and card["rvc_webui_compatible"]
    assert card["steps"] == res.steps and card["epochs"] == 1 and card["corpus_hours"] > 0
    want = {"sample_rate": 40000, "vocoder": "HiFi-GAN", "embedder": "spectral", "f0_method": "pm",
            "version": "v2", "precision": "fp32"}  # fmt: skip
    assert {k: card[k] for k in want} == want and card["store"].endswith("corpus")
    assert {"val/mel", "val/spk/0/mel", "val/spk/1/mel"} <= set(card["val_metrics"])
    assert card["created"] and card["val_step"] == res.steps
    snaps = sorted(p.name for p in base.iterdir() if p.is_dir())
    assert res.steps >= 1 and snaps == [f"s{i}" for i in range(1, res.steps + 1)]  # every step
    assert not list(out.glob("*.index")) and not list(out.rglob(".*.pth"))
    g_state = torch.load(g_path, weights_only=True)["model"]
    assert any(k.startswith("enc_q.") for k in g_state)  # G with enc_q, RVC's names
    assert any(k.endswith(".weight_g") for k in g_state)
    # a voice run on another store starts strictly from those weights, D included
    voice = train_cfg(corpus_root, f"out_dir={tmp_path / 'voice'}", "pretrained=custom",
                      f"pretrained.generator={g_path}", f"pretrained.discriminator={d_path}",
                      name="corpus")  # fmt: skip
    module = build_module(voice)
    load_pretrained(voice, module)
    assert torch.equal(module.generator.emb_g.weight, g_state["emb_g.weight"])
    assert torch.equal(
        module.generator.enc_q.pre.weight, g_state["enc_q.pre.weight"]
    )  # training-only weights come along
    d_state = from_rvc_names(torch.load(d_path, weights_only=True)["model"])
    d_now = module.gan.discriminator.state_dict()
    assert all(torch.equal(d_now[k], v) for k, v in d_state.items())
    tuned = run(train_cfg(
        corpus_root, f"out_dir={tmp_path / 'voice'}", "pretrained=custom", "trainer.max_epochs=1",
        "+trainer.limit_train_batches=1",
        f"pretrained.generator={g_path}", f"pretrained.discriminator={d_path}",
        "callbacks.index=null", name="corpus"))  # fmt: skip
    assert tuned.voice_model.exists()


def test_a_base_with_more_rows_needs_auto_and_then_loads(tmp_path, corpus_root):
    """A base past 109 speakers: a voice run at 109 rows is told to use auto, which takes the
    file's rows (as Applio does)."""
    from rvc.io.base_model import save_base_model
    from rvc.train.step import build_gan

    torch.manual_seed(0)
    big = build_gan(
        compose("train", ["name=x", "model=debug", "model.synthesizer.spk_embed_dim=130"])
    )
    files = save_base_model(tmp_path, big.generator, big.discriminator, {}, sample_rate=40000)
    over = ["pretrained=custom", f"pretrained.generator={files.generator}",
            f"pretrained.discriminator={files.discriminator}", "trainer.max_epochs=1",
            "callbacks.index=null", "+trainer.limit_train_batches=1"]  # fmt: skip
    with pytest.raises(TrainError, match="spk_embed_dim=auto"):
        run(train_cfg(corpus_root, f"out_dir={tmp_path / 'a'}", *over, name="corpus"))
    cfg = train_cfg(corpus_root, f"out_dir={tmp_path / 'b'}", *over,
                    "model.synthesizer.spk_embed_dim=auto", name="corpus")  # fmt: skip
    res = run(cfg)
    assert cfg.model.synthesizer.spk_embed_dim == 130 and res.voice_model.exists()


def test_interval_writes_once_per_step_and_only_on_rank_zero(tmp_path, monkeypatch):
    cb = BaseModelExport(str(tmp_path), str(tmp_path), every_n_steps=2)
    written = []
    monkeypatch.setattr(cb, "write", lambda t, m, folder: written.append(folder.name))
    trainer = SimpleNamespace(global_step=0, optimizers=[1, 2], is_global_zero=True)
    for gs in (2, 4, 4, 6, 8):  # G steps 1, 2, 2, 3, 4: optim.accumulate repeats a step
        trainer.global_step = gs
        cb.on_train_batch_end(trainer, None)
    assert written == ["s2", "s4"]
    trainer.is_global_zero, trainer.global_step = False, 12
    cb.on_train_batch_end(trainer, None)
    assert written == ["s2", "s4"]


@pytest.mark.slow
def test_a_real_size_base_run_writes_applios_layout(tmp_path, corpus_root):
    """The published 40k layout (model=40k on the same 40 kHz store): one batch, then the files
    hold exactly Applio's names and shapes (tests/io/fixtures/base_layout.json)."""
    ref = json.loads((Path(__file__).parents[1] / "io/fixtures/base_layout.json").read_text())
    ref = ref["cases"]["v2_f0_40k_hifigan"]
    out = tmp_path / "run"
    run(train_cfg(corpus_root, f"out_dir={out}", *BASE_RUN, "model=40k", "data.batch_size=2",
                  "+trainer.limit_train_batches=1", "+trainer.limit_val_batches=1",
                  "trainer.val_check_interval=null", "callbacks.base_model.every_n_steps=0",
                  "callbacks.evaluation=null", name="corpus"))  # fmt: skip
    for name, key in (("f0G40k.pth", "generator"), ("f0D40k.pth", "discriminator")):
        state = torch.load(out / "base" / name, weights_only=True)["model"]
        assert {k: list(v.shape) for k, v in state.items()} == dict(ref[key]), name
