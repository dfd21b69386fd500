"""Tiny random HuBERT checkpoints on disk, in Applio's and transformers' layouts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

HIDDEN, LAYERS, PROJ = 32, 3, 8


def tiny_config(**overrides):
    """A HuBERT config small enough for CPU tests, with the real conv strides (20 ms frames)."""
    from transformers import HubertConfig

    kw = dict(
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=4,
        intermediate_size=64,
        conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16,
        # 16 channels per group, as real HuBERTs have >= 16 (48): oneDNN 3.10's AMX bf16 kernel
        # computes grouped convs with < 16 channels per group wrongly (docs/precision.md)
        num_conv_pos_embedding_groups=2,
        classifier_proj_size=PROJ,
    )
    kw.update(overrides)
    return HubertConfig(**kw)


def save_tiny(folder: Path, final_proj: bool, fmt: str = "bin", seed: int = 0, **cfg) -> dict:
    """Write config.json + weights to `folder`; return the state dict written (current names).

    fmt "bin": Applio's `pytorch_model.bin` with old `weight_g/weight_v` names (+ `final_proj`);
    fmt "safetensors": `save_pretrained` of a plain HubertModel (no final_proj possible).
    """
    from transformers import HubertModel

    torch.manual_seed(seed)
    config = tiny_config(**cfg)
    model = HubertModel(config).eval()
    # non-trivial affine/bias values, so a layer left at its init would show
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    state = dict(model.state_dict())
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "safetensors":
        assert not final_proj
        model.save_pretrained(folder)
        return state
    config.save_pretrained(folder)
    on_disk = {}
    for k, v in state.items():
        k = k.replace("parametrizations.weight.original0", "weight_g")
        k = k.replace("parametrizations.weight.original1", "weight_v")
        on_disk[k] = v.clone()
    if final_proj:
        proj = torch.nn.Linear(config.hidden_size, config.classifier_proj_size)
        state["final_proj.weight"] = on_disk["final_proj.weight"] = proj.weight.detach().clone()
        state["final_proj.bias"] = on_disk["final_proj.bias"] = proj.bias.detach().clone()
    torch.save(on_disk, folder / "pytorch_model.bin")
    return state


@pytest.fixture
def no_network(monkeypatch):
    """Route every hf_hub_download to the local cache only; record the calls."""
    import huggingface_hub
    from huggingface_hub import constants

    real = huggingface_hub.hf_hub_download
    calls: list[dict] = []

    def local_only(*args, **kwargs):
        calls.append(dict(zip(("repo_id", "filename"), args, strict=False), **kwargs))
        kwargs["local_files_only"] = True
        return real(*args, **kwargs)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", local_only)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return calls


@pytest.fixture
def make_tiny():
    """`make_tiny(folder, final_proj, fmt="bin", **config)` → state dict written."""
    return save_tiny


@pytest.fixture
def hf_reference():
    """`hf_reference(state, audio [B, T], layers)` → plain transformers output of layer `layers`.

    Builds a HubertModel cut to `layers` layers from the same weights: its last hidden state is
    the output of layer `layers`, independent of our embedder's hooks and masking.
    """
    from transformers import HubertModel

    def run(state: dict, audio: torch.Tensor, layers: int = LAYERS) -> torch.Tensor:
        model = HubertModel(tiny_config(num_hidden_layers=layers)).eval()
        model.load_state_dict(
            {k: v for k, v in state.items() if "final_proj" not in k}, strict=False
        )
        with torch.inference_mode():
            return model(audio).last_hidden_state

    return run
