"""Our training step equals Applio's: same weights, batch and noise give the same losses.

`fixtures/step_reference_<vocoder>.npz` holds two steps of Applio's own code (run by
`fixtures/make_step_reference.py` outside this repository; its docstring says what is pinned
and how): tiny weights in Applio's key names, a padded batch of two items of different
lengths, and per step the segment starts, every loss term and each module's gradient norm.
Here our generator and discriminator are built from the real configs (`vocoder=<name>` with the
fixture's sizes), load those weights strictly, and `rvc.train.step.gan_step` runs on the batch
with the real optimiser config, under the same keyed noise (`seeded_noise.py`).

What it protects: the loss weights of `conf/vocoder` (mel 45, fm 2, KL 1, adv 1), enc_q's
per-item spectrogram of a padded batch, the segment slicing, the D-then-G order with D updated
before the G losses, the loss formulas and AdamW's settings (step 2 runs on step 1's update).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from rvc.models.synthesizer import CONFIG_KEYS
from rvc.train.step import gan_step
from tests.train.conftest import build_gan, train_cfg
from tests.train.seeded_noise import SeededNoise
from tests.train.step_fixture import batch_tensors, read_text, unpack_state

FIXTURES = Path(__file__).parent / "fixtures"
VOCODERS = ["hifigan", "mrf_hifigan"]
# fp32 on CPU, measured: ours against the fixture, and Applio against itself on 1 vs 2 threads,
# differ by <= 7e-7 relative in a loss and <= 6e-6 in a gradient norm (AMX, and with ATen and
# oneDNN held to AVX2 or to scalar code; the G losses follow one AdamW step of D, which
# amplifies rounding in near-zero gradients). The bounds keep 5-15x that margin and stay far
# below what a real change gives: a mel weight 1 % off, or the batch-padded spectrogram (KL and
# gradients off by 2e-4 to 2e-2)
LOSS_RTOL = 1e-5
GRAD_RTOL = 3e-5
LOSSES = ("d/loss", "g/adv", "g/fm_weighted", "g/mel", "g/mel_weighted", "g/kl", "g/loss")
# the period discriminators of Applio's MultiPeriodDiscriminator(version=...)
APPLIO_PERIODS = {"v1": [2, 3, 5, 7, 11, 17], "v2": [2, 3, 5, 7, 11, 17, 23, 37]}
# Applio's names for the messages
APPLIO_NAMES = {
    "d/loss": "loss_disc", "g/adv": "loss_gen", "g/fm_weighted": "loss_fm (×2 inside)",
    "g/mel": "L1 of the mels", "g/mel_weighted": "loss_mel", "g/kl": "loss_kl",
    "g/loss": "loss_gen_all",
}  # fmt: skip


def _fixture(name: str) -> dict:
    path = FIXTURES / f"step_reference_{name}.npz"
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _our_gan(tmp_path: Path, fx: dict, name: str):
    """Our GAN from the real configs at the fixture's sizes, with the fixture's weights."""
    items = dict(zip(CONFIG_KEYS, json.loads(read_text(fx["config"])), strict=True))
    sr, hop = items["sr"], int(np.prod(items["upsample_rates"]))
    n_fft = (items["spec_channels"] - 1) * 2
    overrides = [
        f"vocoder={name}",
        f"model.sample_rate={sr}",
        f"model.hop_length={hop}",
        f"model.segment_samples={items['segment_size'] * hop}",
        f"model.discriminator_width={float(fx['d_width'])}",
        f"model.mel.n_fft={n_fft}",
        f"model.mel.win_length={n_fft}",
        f"model.mel.n_mels={ {2048: 125, 1024: 80}[n_fft] }",  # Applio's configs/<rate>.json
        *(f"model.synthesizer.{k}={json.dumps(v)}" for k, v in items.items() if k != "sr"),
    ]
    cfg = train_cfg(tmp_path, *overrides)
    assert cfg.optim.grad_clip is None, "Applio does not clip; the default config must not"
    gan = build_gan(cfg)
    assert gan.generator.vocoder == read_text(fx["vocoder"])
    periods = [d.period for d in gan.discriminator.discriminators[1:]]
    assert periods == APPLIO_PERIODS[read_text(fx["disc_version"])]
    gan.generator.load_state_dict(unpack_state(fx, "g"), strict=True)
    gan.discriminator.load_state_dict(unpack_state(fx, "d"), strict=True)
    make_opt = instantiate(cfg.optim.optimizer)
    opts = make_opt(gan.generator.parameters()), make_opt(gan.discriminator.parameters())
    return gan.train(), opts


def _grad_norms(gan) -> dict[str, float]:
    g = gan.generator
    parts = {f"g/{k}": getattr(g, k) for k in ("enc_p", "dec", "enc_q", "flow", "emb_g")}
    parts |= {f"d/{i}": d for i, d in enumerate(gan.discriminator.discriminators)}
    out = {}
    for key, module in parts.items():
        grads = [p.grad.double().flatten() for p in module.parameters() if p.grad is not None]
        out[key] = float(torch.cat(grads).norm()) if grads else 0.0
    return out


def _off(ours: float, ref: float, rtol: float) -> bool:
    return not abs(ours - ref) <= rtol * max(abs(ref), 1e-12)


@pytest.mark.parametrize("name", VOCODERS)
def test_two_steps_equal_applio(tmp_path, name):
    fx = _fixture(name)
    gan, (opt_g, opt_d) = _our_gan(tmp_path, fx, name)
    batch = batch_tensors(fx)
    starts = []
    hook = gan.generator.register_forward_hook(lambda m, a, out: starts.append(out.ids_slice))
    try:
        for s, seed in enumerate(fx["noise_seeds"].tolist()):
            with SeededNoise(seed) as noise:
                losses = gan_step(gan, batch, opt_g, opt_d)
            ref_draws = json.loads(read_text(fx[f"step{s}/draws"]))
            assert noise.draw_counts() == ref_draws, f"step {s}: other random draws than Applio"
            np.testing.assert_array_equal(starts[-1].numpy(), fx[f"step{s}/ids_slice"])
            bad = [
                f"{k} ({APPLIO_NAMES[k]}): ours {float(losses[k]):.9g}, "
                f"Applio {float(fx[f'step{s}/{k}']):.9g}"
                for k in LOSSES
                if _off(float(losses[k]), float(fx[f"step{s}/{k}"]), LOSS_RTOL)
            ]
            norms = _grad_norms(gan)
            bad += [
                f"grad norm {k}: ours {v:.9g}, Applio {float(fx[f'step{s}/grad/{k}']):.9g}"
                for k, v in norms.items()
                if _off(v, float(fx[f"step{s}/grad/{k}"]), GRAD_RTOL)
            ]
            assert not bad, f"{name} step {s} differs from Applio's:\n" + "\n".join(bad)
    finally:
        hook.remove()
