"""`model.checkpointing`: the same training step (losses, G and D gradients) with less held for
backward; `auto` by GPU memory; inference untouched."""

from __future__ import annotations

import copy

import pytest
import torch

import rvc.models.commons as commons
from rvc.models.encoders import WN
from rvc.train.step import StepConfigError, build_gan, checkpointing, gan_step
from tests.conftest import compose
from tests.train.conftest import batch_for


def _cfg(*overrides: str):
    return compose("train", ["name=x", "model=debug", "embedder=spectral", *overrides])


def _step(gan, batch) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """One gan_step (lr 0: the weights stay) -> (losses, every parameter's gradient)."""
    opt_g = torch.optim.SGD(gan.generator.parameters(), lr=0.0)
    opt_d = torch.optim.SGD(gan.discriminator.parameters(), lr=0.0)
    torch.manual_seed(5)  # segment starts, posterior noise, the NSF source's noise
    losses = gan_step(gan, batch, opt_g, opt_d)
    return losses, {n: p.grad.clone() for n, p in gan.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("vocoder", ["hifigan", "mrf_hifigan", "refinegan"])
def test_one_step_is_the_same_with_checkpointing(vocoder):
    cfg = _cfg(f"vocoder={vocoder}")
    torch.manual_seed(0)
    plain = build_gan(cfg)
    ckpt = copy.deepcopy(plain)
    ckpt.generator.set_checkpointing(True)
    batch = batch_for(cfg, b=2, frames=30)
    (la, ga), (lb, gb) = _step(plain, batch), _step(ckpt, batch)
    assert la.keys() == lb.keys()
    for k in la:
        torch.testing.assert_close(lb[k], la[k], rtol=1e-5, atol=1e-6, msg=k)
    assert ga.keys() == gb.keys() and any(k.startswith("generator.dec.") for k in ga)
    for k in ga:
        torch.testing.assert_close(gb[k], ga[k], rtol=1e-4, atol=1e-6, msg=k)


def _held_for_backward(gan, batch, monkeypatch) -> int:
    """Bytes the G step's forward keeps for backward: tensors autograd saves (outside
    checkpointed regions) plus the inputs checkpointed regions keep instead; each storage once."""
    storages: dict[int, int] = {}

    def keep(t: torch.Tensor) -> None:
        s = t.untyped_storage()
        storages.setdefault(s.data_ptr(), s.nbytes())

    def pack(t: torch.Tensor) -> torch.Tensor:
        keep(t)
        return t

    real = commons.checkpoint

    def recording(fn, *args, **kwargs):
        for a in args:
            if torch.is_tensor(a):
                keep(a)
        return real(fn, *args, **kwargs)

    monkeypatch.setattr(commons, "checkpoint", recording)
    params = {p.untyped_storage().data_ptr() for p in gan.parameters()}
    torch.manual_seed(5)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out, real_wav = gan.generate(batch)
        loss = gan.g_losses(out, real_wav)["g/loss"]
    loss.backward()  # the recomputation works from what was kept
    return sum(n for ptr, n in storages.items() if ptr not in params)


def test_checkpointing_keeps_less_for_backward(monkeypatch):
    cfg = _cfg()
    torch.manual_seed(0)
    gan = build_gan(cfg)
    batch = batch_for(cfg, b=2, frames=100)
    plain = _held_for_backward(gan, batch, monkeypatch)
    gan.generator.set_checkpointing(True)
    ckpt = _held_for_backward(gan, batch, monkeypatch)
    assert ckpt < 0.8 * plain, (ckpt, plain)


def test_config_switches_the_vocoder_and_wavenets():
    g = build_gan(_cfg("model.checkpointing=true")).generator
    wns = [m for m in g.modules() if isinstance(m, WN)]
    assert (
        g.dec.checkpointing and len(wns) == 5 and all(m.checkpointing for m in wns)
    )  # enc_q, 4 flows
    plain = build_gan(_cfg()).generator
    assert not plain.dec.checkpointing  # off by default
    assert g.state_dict().keys() == plain.state_dict().keys()  # checkpoints and .pth unchanged


def test_inference_is_unaffected():
    cfg = _cfg()
    torch.manual_seed(0)
    g = build_gan(cfg).generator.eval()
    batch = batch_for(cfg, b=1, frames=20)
    args = (batch["phone"], batch["phone_lengths"], batch["pitch"], batch["pitchf"], 0)
    outs = []
    for on in (False, True):
        g.set_checkpointing(on)
        torch.manual_seed(1)
        outs.append(g.infer(*args)[0])
    assert torch.equal(outs[0], outs[1])


def test_auto_follows_gpu_memory(monkeypatch):
    assert checkpointing("auto", "cpu") is False
    assert checkpointing(True, "cpu") is True and checkpointing(False, "gpu") is False
    with pytest.raises(StepConfigError, match="true, false or auto"):
        checkpointing("sometimes", "gpu")

    class Props:
        total_memory = 0

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: Props)
    for gib, on in ((8, True), (12, True), (24, False), (80, False)):
        Props.total_memory = gib * 2**30
        assert checkpointing("auto", "gpu") is on, gib
    assert checkpointing("auto", "cpu") is False  # a CPU run on a GPU machine


@pytest.mark.slow  # 12 s of dynamo tracing on 2 cores
def test_compiled_step_with_checkpointing_is_the_eager_one():
    # dynamo traces the non-reentrant checkpoint as one region (no graph break); backend eager
    # (~10 s of tracing); aot_eager gives the same, checked by hand (~80 s on 2 cores)
    import torch._dynamo
    from torch._dynamo.utils import counters

    from rvc.train.step import compile_gan

    cfg = _cfg("model.checkpointing=true")
    torch.manual_seed(0)
    eager = build_gan(cfg)
    compiled = compile_gan(copy.deepcopy(eager), backend="eager", dynamic=False)
    batch = batch_for(cfg, b=2, frames=20)
    torch._dynamo.reset()
    counters.clear()
    (la, ga), (lb, gb) = _step(eager, batch), _step(compiled, batch)
    assert not counters["graph_break"]
    for k in la:
        torch.testing.assert_close(lb[k], la[k], msg=k)
    for k in ga:
        torch.testing.assert_close(gb[k], ga[k], msg=k)
