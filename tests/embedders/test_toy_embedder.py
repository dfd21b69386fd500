"""A new embedder is two files (module + YAML), and it goes through every stage: the .pth
records its name, and conversion finds it again by that name."""

from __future__ import annotations

from tests.toy_recipe import add_option, extract_train_convert

MODULE = '''
    """A toy content embedder: log spectra of HuBERT-sized frames, projected (torch only)."""

    import torch

    from rvc.embedders.base import Embedder


    class ToyContent(Embedder):
        def __init__(self, name="toy_content", version="v2", dim=768, seed=0, device="cpu"):
            super().__init__()
            self.name, self.version, self.dim = name, version, int(dim)
            g = torch.Generator().manual_seed(seed)
            self.register_buffer("proj", torch.randn(201, self.dim, generator=g) / 15)
            self.to(device)

        def forward(self, audio, padding_mask=None):
            lengths = self.check_input(audio, padding_mask)
            x = audio.to(self.proj.device, torch.float32)
            feats = torch.log1p(torch.fft.rfft(x.unfold(-1, 400, 320)).abs()) @ self.proj
            n = torch.tensor([self.n_frames(int(k)) for k in lengths], device=x.device)
            valid = torch.arange(feats.shape[1], device=x.device)[None] < n[:, None]
            return feats * valid[..., None]  # [B, frames, dim]
'''

YAML = """
    # A toy embedder (tests/embedders/test_toy_embedder.py): the widths from _base.
    defaults:
      - _base
      - _self_

    _target_: toy_content.ToyContent
    name: toy_content
    seed: 0
"""


def test_toy_embedder_goes_through_extract_train_export_and_convert(
    tmp_path, voice_dir, monkeypatch
):
    conf = add_option(tmp_path, "embedder", "toy_content", MODULE, YAML, monkeypatch)
    vm, conv, _ = extract_train_convert(tmp_path, voice_dir, conf, "pm", "toy_content")
    assert vm.metadata["embedder_model"] == "toy_content"
    assert type(conv.embedder).__name__ == "ToyContent" and conv.embedder.dim == 768
