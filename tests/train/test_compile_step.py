"""`device.compile`: the LightningModule compiles G and D in place (`rvc.train.step.compile_gan`)
and trains as the eager module does: the same losses and weights, no graph breaks, one graph per
shape (no recompilation per step), the same state-dict names (checkpoints and the `.pth`).

Each compiled run fits the module once and every test reads it. Tracing is nearly all of its
time (2 shared cores, one thread): backend `eager` (dynamo's capture only, eager autograd) ~25 s,
in the default run; `aot_eager` (AOTAutograd traces forward and backward too: what inductor
compiles, kernels still eager) ~75 s, under `-m slow`.
"""

from __future__ import annotations

import lightning as L
import pytest
import torch
import torch._dynamo
from torch._dynamo.utils import counters
from torch.utils.data import DataLoader

import rvc.train.module as module_lib
from rvc.io.voice_model import read_voice_model, save_voice_model
from rvc.train.run import build_module
from rvc.utils.device import compile_backend
from tests.conftest import options
from tests.train.conftest import batch_for, train_cfg

# padded lengths of the steps, as a DataModule with `data.frame_multiple` gives them: the
# default run repeats one (warm-up, then no new graph); the slow one also visits a second
# bucket (G once more) and comes back to the first (its graph reused)
FRAMES = {"eager": (20, 20, 20), "aot_eager": (20, 20, 30, 20)}


def _fit(root, compile: str, frames: tuple[int, ...]) -> dict:
    """Build the module from the config with `device.compile=<compile>`, fit one epoch of
    batches padded to `frames` and validate once; what each step returned and the dynamo
    counters after it."""
    cfg = train_cfg(root, f"device.compile={compile}")
    torch.manual_seed(0)
    module = build_module(cfg)
    batches = [batch_for(cfg, b=2, frames=f, seed=i) for i, f in enumerate(frames)]
    val = [batch_for(cfg, b=2, frames=25, seed=9)]
    losses, graphs = [], []
    step = module_lib.gan_step

    def recording_step(*args, **kwargs):
        out = step(*args, **kwargs)
        losses.append(out)
        graphs.append(counters["stats"]["unique_graphs"])
        return out

    trainer = L.Trainer(
        accelerator="cpu", devices=1, max_epochs=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
    )  # fmt: skip
    torch._dynamo.reset()  # trace from scratch, whatever ran before in this process
    counters.clear()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(module_lib, "gan_step", recording_step)
        trainer.fit(
            module,
            train_dataloaders=DataLoader(batches, batch_size=None),
            val_dataloaders=DataLoader(val, batch_size=None),
        )
    return {
        "frames": frames,
        "cfg": cfg,
        "module": module,
        "losses": losses,
        "graphs": graphs,
        "graphs_end": counters["stats"]["unique_graphs"],
        "graph_breaks": dict(counters["graph_break"]),
        "val_mel": float(trainer.callback_metrics["val/mel"]),
        "weights": {n: p.detach().clone() for n, p in module.named_parameters()},
    }


@pytest.fixture(scope="module", params=["eager", pytest.param("aot_eager", marks=pytest.mark.slow)])
def runs(request, tmp_path_factory) -> tuple[dict, dict]:
    """(the eager module's run, the same run compiled with the backend `request.param`)."""
    root, frames = tmp_path_factory.mktemp("compile_step"), FRAMES[request.param]
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is fastest on a shared CPU
    try:
        return _fit(root, "false", frames), _fit(root, request.param, frames)
    finally:
        torch.set_num_threads(before)
        torch._dynamo.reset()


def test_compile_option_values():
    assert compile_backend(False) is None and compile_backend(None) is None
    assert compile_backend(True) == "inductor" and compile_backend("true") == "inductor"
    assert compile_backend("false") is None and compile_backend("aot_eager") == "aot_eager"


@pytest.mark.parametrize("device", options("device"))
def test_every_device_preset_has_compile_off(tmp_path, device):
    assert train_cfg(tmp_path, f"device={device}").device.compile is False


def test_device_compile_composes_to_the_module(tmp_path):
    assert train_cfg(tmp_path).device.compile is False  # off by default
    module = build_module(train_cfg(tmp_path, "device.compile=aot_eager"))
    assert module.compile_backend == "aot_eager"
    assert build_module(train_cfg(tmp_path, "device.compile=true")).compile_backend == "inductor"
    assert build_module(train_cfg(tmp_path)).compile_backend is None
    module.configure_model()  # what Lightning calls: compiles G and D in place, once
    g, d = module.gan.generator, module.gan.discriminator
    assert g._compiled_call_impl is not None and d._compiled_call_impl is not None
    first = g._compiled_call_impl
    module.configure_model()  # a second fit (or the batch-size tuner) does not compile again
    assert module.gan.generator._compiled_call_impl is first


def test_compiled_module_matches_eager(runs):
    eager, compiled = runs
    assert eager["module"].gan.generator._compiled_call_impl is None
    assert compiled["module"].gan.generator._compiled_call_impl is not None
    assert compiled["module"].gan.discriminator._compiled_call_impl is not None
    assert len(compiled["losses"]) == len(eager["losses"]) == len(compiled["frames"])
    # Tolerance: both backends run eager's kernels, so HiFi-GAN comes out equal up to float order;
    # losses to 1e-5 relative, weights (after 3-4 AdamW steps) to 1e-5 relative + 1e-6. A real
    # difference (a term lost, a detach moved, a stale frozen flag) moves them by a whole lr.
    for step, (got, want) in enumerate(zip(compiled["losses"], eager["losses"], strict=True)):
        assert got.keys() == want.keys()
        for key in want:
            torch.testing.assert_close(
                got[key], want[key], rtol=1e-5, atol=1e-6,
                msg=lambda m, k=key, s=step: f"step {s} {k}: {m}",
            )  # fmt: skip
    w_eager, w_comp = eager["weights"], compiled["weights"]
    assert w_comp.keys() == w_eager.keys()
    for name, want in w_eager.items():
        torch.testing.assert_close(w_comp[name], want, rtol=1e-5, atol=1e-6, msg=name)
    # validation ran the inference path (eagerly: `infer` is not `__call__`) on the compiled G
    assert compiled["val_mel"] == pytest.approx(eager["val_mel"], rel=1e-5)


def test_no_graph_breaks_and_no_recompilation_per_step(runs):
    _, compiled = runs
    assert compiled["graph_breaks"] == {}
    seen: set[int] = set()
    want = 0
    for step, (frames, graphs) in enumerate(
        zip(compiled["frames"], compiled["graphs"], strict=True)
    ):
        if frames not in seen:
            # first step: G once, D twice (trainable for the D step, frozen for the G step);
            # a new padded length: G once more (D sees the fixed-size segment)
            want += 1 if seen else 3
            seen.add(frames)
        assert graphs == want, f"step {step} ({frames} frames): {graphs} graphs, want {want}"
    assert compiled["graphs_end"] == want  # validation (`g.infer`, eager) compiled nothing


def test_state_dict_checkpoint_and_export_are_unchanged(runs, tmp_path):
    eager, compiled = runs
    e, c = eager["module"], compiled["module"]
    assert list(c.state_dict()) == list(e.state_dict())
    assert not any("_orig_mod" in k for k in c.state_dict())
    # a compiled run's checkpoint loads strictly into an eager module (resume without compile)
    torch.manual_seed(1)
    fresh = build_module(eager["cfg"])
    fresh.load_state_dict(c.state_dict(), strict=True)
    # the `.pth` export: the same tensor names and values
    paths = []
    for m, name in ((e, "eager"), (c, "compiled")):
        g = m.gan.generator
        paths.append(tmp_path / f"{name}.pth")
        save_voice_model(paths[-1], g, g.config, model_name=name, vocoder=g.vocoder)
    got, want = read_voice_model(paths[1]), read_voice_model(paths[0])
    assert got.weights.keys() == want.weights.keys() and len(got.weights) > 10
    for k, w in want.weights.items():  # fp16 in the file: the 1e-5 difference rounds to 1 ulp
        torch.testing.assert_close(got.weights[k], w, rtol=1e-3, atol=1e-4, msg=k)
