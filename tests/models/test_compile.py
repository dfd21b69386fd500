"""torch.compile readiness: the generator (train and infer) and discriminators trace as one graph.

`fullgraph=True` turns any graph break into an error that names the op and line, so these tests
fail on the first break. The CPU backends ("eager" runs the captured FX graph as is,
"aot_eager" adds AOTAutograd's joint forward/backward trace) keep the math identical to eager
mode, so outputs and gradients must match the plain module under the same seed. The `slow` tests
add inductor (the GPU speed-up, compiled here for CPU) and dynamic shapes on all vocoders.
The last test runs the codebase's own step (`rvc.train.step.gan_step`) with G and D compiled,
as `bench/train_step.py --compile` does. Every model is `conf/model/debug.yaml`.
"""

from __future__ import annotations

import pytest
import torch
import torch._dynamo
import torch._functorch.config

from rvc.models.synthesizer import Synthesizer
from rvc.models.vocoders import vocoder_names
from rvc.train.step import build_gan, gan_step
from tests.conftest import compose, debug_config
from tests.models.conftest import published_discriminator

CONFIG = debug_config()  # conf/model/debug.yaml: 40 kHz framing, every vocoder builds from it
SPEC, SEGMENT = CONFIG[0], CONFIG[1]
FRAMES = SEGMENT + 4  # both items of `batch` are longer than the segment
DIM = 768  # v2 content features
# HiFi-GAN in the default suite; the other vocoders under -m slow (the suite's time budget)
CI_FIRST = [
    v if v == "HiFi-GAN" else pytest.param(v, marks=pytest.mark.slow) for v in vocoder_names()
]


def batch(seed: int = 0) -> tuple[torch.Tensor, ...]:
    """(phone, lengths, pitch, pitchf, spec, sid) for two items, the second shorter."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([FRAMES, FRAMES - 3])
    phone = torch.randn(2, FRAMES, DIM, generator=g)
    pitch = torch.randint(1, 256, (2, FRAMES), generator=g)
    pitchf = torch.rand(2, FRAMES, generator=g) * 300 + 80
    pitchf[:, :3] = 0  # an unvoiced stretch takes the noise-only branch of the source
    spec = torch.rand(2, SPEC, FRAMES, generator=g)
    sid = torch.tensor([0, 3])
    return phone, lengths, pitch, pitchf, spec, sid


@pytest.fixture(autouse=True)
def fresh_dynamo():
    # compiled code is cached per code object: reset so each case traces from scratch
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _flatten(out) -> list[torch.Tensor]:
    if torch.is_tensor(out):
        return [out]
    return [t for item in out for t in _flatten(item)]


def _model(vocoder: str, **overrides) -> Synthesizer:
    torch.manual_seed(0)
    model = Synthesizer(*debug_config(**overrides), vocoder=vocoder)
    with torch.no_grad():  # the flow's couplings start as the identity: make them matter
        for p in model.flow.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def _train_outputs_and_grads(model: Synthesizer, fn) -> tuple[list, list]:
    """One training forward + backward through `fn` (the model or its compiled form)."""
    phone, lengths, pitch, pitchf, spec, sid = batch()
    model.zero_grad(set_to_none=True)
    torch.manual_seed(1)  # the same segment starts, posterior noise and source noise
    out = fn(phone, lengths, pitch, pitchf, spec, lengths, sid)
    wav, z_p, logs_q = out.wav, out.z_p, out.logs_q
    (wav.square().mean() + (z_p * logs_q).mean()).backward()
    # AOTAutograd returns zeros where eager autograd leaves None (parameters off the loss)
    grads = [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in model.parameters()]
    return _flatten(out), grads


def _assert_train_match(model: Synthesizer, compiled, rtol: float, atol: float) -> None:
    eager_out, eager_grads = _train_outputs_and_grads(model, model)
    comp_out, comp_grads = _train_outputs_and_grads(model, compiled)
    assert len(comp_out) == len(eager_out) == 10
    assert torch.equal(comp_out[1], eager_out[1])  # ids_slice: the same RNG stream
    for got, want in zip(comp_out, eager_out, strict=True):
        torch.testing.assert_close(got, want, rtol=rtol, atol=atol)
    for got, want in zip(comp_grads, eager_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=10 * rtol, atol=atol)
    assert sum(g.abs().sum() for g in comp_grads) > 0


# slow: the compiled `gan_step` test below covers G's training forward and backward in CI
@pytest.mark.slow
@pytest.mark.parametrize("vocoder", vocoder_names())
def test_training_forward_is_one_graph_and_matches_eager(vocoder: str) -> None:
    model = _model(vocoder).train()
    # aot_eager also traces the backward (what inductor compiles) but keeps eager kernels
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    _assert_train_match(model, compiled, rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # dynamic shapes serve `bench/train_step.py --dynamic`; training compiles static
@pytest.mark.parametrize("vocoder", vocoder_names())
def test_varying_lengths_reuse_one_dynamic_graph(vocoder: str) -> None:
    from torch._dynamo.utils import counters

    model = _model(vocoder).train()
    compiled = torch.compile(model, fullgraph=True, backend="eager", dynamic=True)
    counters.clear()
    for frames in (12, 15, 19):  # batches of different padded lengths, as a collate makes
        g = torch.Generator().manual_seed(frames)
        lengths = torch.tensor([frames, frames - 3])
        phone, spec = (
            torch.randn(2, frames, DIM, generator=g),
            torch.rand(2, SPEC, frames, generator=g),
        )
        pitch = torch.randint(1, 256, (2, frames), generator=g)
        pitchf = torch.rand(2, frames, generator=g) * 300 + 80
        wav = compiled(phone, lengths, pitch, pitchf, spec, lengths, torch.tensor([0, 1]))[0]
        assert wav.shape == (2, 1, SEGMENT * model.hop_length)
    assert counters["stats"]["unique_graphs"] == 1  # no recompilation per length


@pytest.mark.slow
@pytest.mark.parametrize("vocoder", vocoder_names())
def test_inductor_training_matches_eager(vocoder: str) -> None:
    """The GPU path (inductor) on CPU: ~1 min per vocoder on 2 cores, hence slow."""
    import torch._inductor.config

    # fallback_random keeps eager's generator but not always eager's order of draws: with the
    # debug model's three-stage 40 kHz vocoder inductor's code draws in another order (the
    # posterior noise and segment starts differ); with two stages at hop 8 it draws as eager
    # does, so this test keeps that layout
    model = _model(vocoder, upsample_rates=[4, 2], upsample_kernel_sizes=[8, 4], sr=16000).train()
    compiled = torch.compile(model, fullgraph=True, backend="inductor")
    # fallback_random: draw noise with eager's generator so outputs are comparable
    with torch._inductor.config.patch(fallback_random=True):
        _assert_train_match(model, compiled, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("vocoder", CI_FIRST)
def test_infer_is_one_graph_and_matches_eager(vocoder: str) -> None:
    model = _model(vocoder).eval()
    phone, lengths, pitch, pitchf, _, sid = batch(1)
    torch.manual_seed(2)
    want = model.infer(phone, lengths, pitch, pitchf, sid)
    # the function under the no_grad decorator, traced under an outer no_grad (as infer runs)
    infer = torch.compile(Synthesizer.infer.__wrapped__, fullgraph=True, backend="eager")
    with torch.no_grad():
        torch.manual_seed(2)
        got = infer(model, phone, lengths, pitch, pitchf, sid)
    assert got[0].shape == (2, 1, FRAMES * model.hop_length)
    for g, w in zip(_flatten(got), _flatten(want), strict=True):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-6)


def test_infer_with_folded_weight_norm_is_one_graph() -> None:
    model = _model("HiFi-GAN").eval()
    model.remove_weight_norm()  # what bench/infer.py --fold-weight-norm runs
    phone, lengths, pitch, pitchf, _, sid = batch(2)
    torch.manual_seed(3)
    want = model.infer(phone, lengths, pitch, pitchf, sid)[0]
    infer = torch.compile(Synthesizer.infer.__wrapped__, fullgraph=True, backend="eager")
    with torch.no_grad():
        torch.manual_seed(3)
        got = infer(model, phone, lengths, pitch, pitchf, sid)[0]
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("version", ["v2", pytest.param("v3", marks=pytest.mark.slow)])
def test_discriminator_is_one_graph_and_matches_eager(version: str) -> None:
    torch.manual_seed(0)
    disc = published_discriminator(*{"v2": ("v2",), "v3": ("v2", "refinegan")}[version])
    g = torch.Generator().manual_seed(1)
    # a length no period divides, so the reflect-pad branch of every period D is traced
    real, fake = torch.randn(2, 1, 1021, generator=g), torch.randn(2, 1, 1021, generator=g)
    fake.requires_grad_(True)

    def run(fn) -> tuple[list[torch.Tensor], torch.Tensor]:
        fake.grad = None
        out = fn(real, fake)
        sum(t.square().mean() for t in out[1]).backward()
        return _flatten(out), fake.grad.clone()

    eager_out, eager_grad = run(disc)
    comp_out, comp_grad = run(torch.compile(disc, fullgraph=True, backend="aot_eager"))
    assert len(comp_out) == len(eager_out)
    for got, want in zip(comp_out, eager_out, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(comp_grad, eager_grad, rtol=1e-4, atol=1e-7)
    assert comp_grad.abs().sum() > 0


def _step_losses_and_grads(gan, data) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
    """One `gan_step`: its losses, and every gradient it left (D's from the D step, G's from the G
    step). SGD, not AdamW: Adam's first update is lr·sign(g), so a rounding-level difference
    in a near-zero D gradient would move the G step's inputs by a whole lr."""
    opt_g = torch.optim.SGD(gan.generator.parameters(), lr=1e-2)
    opt_d = torch.optim.SGD(gan.discriminator.parameters(), lr=1e-2)
    torch.manual_seed(1)  # the same segment starts, posterior noise and source noise
    losses = gan_step(gan, data, opt_g, opt_d)
    params = [*gan.generator.parameters(), *gan.discriminator.parameters()]
    # AOTAutograd returns zeros where eager autograd leaves None (parameters off the loss)
    return losses, [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in params]


@pytest.mark.parametrize(
    "vocoder",
    ["hifigan", pytest.param("mrf_hifigan", marks=pytest.mark.slow),
     pytest.param("refinegan", marks=pytest.mark.slow)],
)  # fmt: skip
def test_gan_step_with_compiled_g_and_d_is_one_graph_each_and_matches_eager(
    tmp_path, one_thread, vocoder
):
    """~40 s per vocoder on one core, nearly all of it tracing (G once, D twice): the default
    run keeps the default vocoder, the other two are `slow`."""
    from torch._dynamo.utils import counters

    from tests.train.conftest import batch_for

    cfg = compose("train", ["name=t", f"out_dir={tmp_path}", "model=debug", f"vocoder={vocoder}",
                            "embedder=spectral"])  # fmt: skip
    gans = []
    for _ in range(2):
        torch.manual_seed(0)
        gans.append(build_gan(cfg).train())
    eager, compiled = gans
    # compiled in place (Module.compile wraps __call__): same parameters and state-dict names,
    # so the optimisers, checkpoints and `frozen` see the modules they always do
    for module in (compiled.generator, compiled.discriminator):
        module.compile(fullgraph=True, backend="aot_eager")  # a graph break raises
    data = batch_for(cfg, b=2, frames=20)

    want_losses, want_grads = _step_losses_and_grads(eager, data)
    counters.clear()
    got_losses, got_grads = _step_losses_and_grads(compiled, data)
    # G once; D twice (trainable for the D step, frozen for the G step): all through dynamo
    assert counters["stats"]["unique_graphs"] == 3
    assert counters["graph_break"] == {}

    # Tolerance. HiFi-GAN and MRF HiFi-GAN come out bit-identical; RefineGAN's traced vocoder
    # rounds differently in the last bit (its audio within 4e-8), which its multi-scale mel
    # (weight 15) grows to at most ~4e-4 of a tensor's largest gradient: so losses to 1e-5
    # relative, each gradient to 2e-3 of its largest magnitude. A real difference (a term
    # missing, a detach moved) is of the order of the gradient itself.
    assert got_losses.keys() == want_losses.keys()
    for key, want in want_losses.items():
        torch.testing.assert_close(
            got_losses[key], want, rtol=1e-5, atol=1e-6, msg=lambda m, k=key: f"{k}: {m}"
        )
    for got, want in zip(got_grads, want_grads, strict=True):
        scale = float(want.abs().max())
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6 + 2e-3 * scale)
    assert sum(g.abs().sum() for g in got_grads) > 0
