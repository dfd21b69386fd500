"""The RVC generator (VITS-style): enc_p, flow, vocoder `dec`, enc_q (training) and emb_g.

Constructed from the 18-item `config` list stored in every RVC `.pth` (docs/formats.md §1), so any
v1/v2, F0/no-F0, 32k/40k/48k model builds with `Synthesizer(*config, use_f0=..., ...)` and its
weights load with strict=True once weight-norm names are mapped (rvc.io).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from rvc.formats import RVC_VOCODER, parse_sample_rate
from rvc.models.commons import (
    rand_slice_segments,
    remove_weight_norm,
    slice_segments,
)
from rvc.models.encoders import PosteriorEncoder, TextEncoder
from rvc.models.flow import ResidualCouplingBlock
from rvc.models.inference import for_inference, fp32_boundary, weight_dtype
from rvc.models.segments import vocode
from rvc.models.vocoders import vocoder_class

# RVC samples the prior at a reduced temperature at inference
INFER_NOISE_SCALE = 0.66666
FLOW_CONTEXT = 32  # frames: more than the flow's receptive field (±24) on each side
# the 18 items of RVC's `config` list, in order (docs/formats.md §1): Synthesizer's positional args
CONFIG_KEYS = (
    "spec_channels", "segment_size", "inter_channels", "hidden_channels", "filter_channels",
    "n_heads", "n_layers", "kernel_size", "p_dropout", "resblock", "resblock_kernel_sizes",
    "resblock_dilation_sizes", "upsample_rates", "upsample_initial_channel",
    "upsample_kernel_sizes", "spk_embed_dim", "gin_channels", "sr",
)  # fmt: skip


def config_list(params: Mapping[str, Any], **overrides: Any) -> list:
    """The 18-item `config` list from the constructor arguments by name (a `conf/model`
    `synthesizer` node, plain or OmegaConf); `overrides` replace items by name."""
    unknown = set(overrides) - set(CONFIG_KEYS)
    if unknown:
        raise KeyError(f"not config items: {sorted(unknown)}")
    values = {**{k: params[k] for k in CONFIG_KEYS}, **overrides}
    return [_plain(values[k]) for k in CONFIG_KEYS]


def _plain(value: Any) -> Any:
    # plain nested lists, as a .pth stores them (an OmegaConf ListConfig is a Sequence too)
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    return value


class TrainOutput(NamedTuple):
    """What a training pass returns (a NamedTuple: torch.compile traces it like a tuple)."""

    wav: torch.Tensor  # [B, 1, segment_size·hop] generated audio of the random segment
    ids_slice: torch.Tensor  # [B] start frame of each segment
    x_mask: torch.Tensor  # [B, 1, T] valid content frames
    y_mask: torch.Tensor  # [B, 1, T] valid spectrogram frames
    z: torch.Tensor  # [B, C, T] posterior sample
    z_p: torch.Tensor  # [B, C, T] z mapped through the flow
    m_p: torch.Tensor  # [B, C, T] prior mean
    logs_p: torch.Tensor  # [B, C, T] prior log-std
    m_q: torch.Tensor  # [B, C, T] posterior mean
    logs_q: torch.Tensor  # [B, C, T] posterior log-std

    def kl_stats(self) -> tuple[torch.Tensor, ...]:
        """(z_p, logs_q, m_p, logs_p, y_mask): the arguments of `rvc.losses.gan.kl_loss`."""
        return self.z_p, self.logs_q, self.m_p, self.logs_p, self.y_mask


class Synthesizer(nn.Module):
    """RVC generator. Training: `forward`; conversion: `infer` (no enc_q needed)."""

    def __init__(
        self,
        spec_channels: int,
        segment_size: int,
        inter_channels: int,
        hidden_channels: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int,
        p_dropout: float,
        resblock: str,
        resblock_kernel_sizes: Sequence[int],
        resblock_dilation_sizes: Sequence[Sequence[int]],
        upsample_rates: Sequence[int],
        upsample_initial_channel: int,
        upsample_kernel_sizes: Sequence[int],
        spk_embed_dim: int,
        gin_channels: int,
        sr: int | str,
        *,
        use_f0: bool = True,
        text_enc_hidden_dim: int = 768,
        vocoder: str = RVC_VOCODER,
        **vocoder_kwargs,
    ) -> None:
        super().__init__()
        if str(resblock) != "1":
            raise ValueError(f"resblock '{resblock}' is not supported; RVC models use '1'")
        self.segment_size = int(segment_size)
        self.use_f0 = bool(use_f0)
        self.vocoder = vocoder
        self.sample_rate = parse_sample_rate(sr)
        self.hop_length = math.prod(upsample_rates)
        self.text_enc_hidden_dim = int(text_enc_hidden_dim)
        # the 18-item list as RVC stores it, for writing .pth files
        self.config = [
            spec_channels, segment_size, inter_channels, hidden_channels, filter_channels,
            n_heads, n_layers, kernel_size, p_dropout, resblock, list(resblock_kernel_sizes),
            [list(d) for d in resblock_dilation_sizes], list(upsample_rates),
            upsample_initial_channel, list(upsample_kernel_sizes), spk_embed_dim, gin_channels,
            self.sample_rate,
        ]  # fmt: skip

        # registration order follows RVC so state dicts list keys in the same order
        self.enc_p = TextEncoder(
            inter_channels,
            hidden_channels,
            filter_channels,
            n_heads,
            n_layers,
            kernel_size,
            p_dropout,
            embedding_dim=self.text_enc_hidden_dim,
            f0=self.use_f0,
        )
        self.dec = vocoder_class(vocoder, self.use_f0)(
            inter_channels,
            resblock_kernel_sizes,
            resblock_dilation_sizes,
            upsample_rates,
            upsample_initial_channel,
            upsample_kernel_sizes,
            gin_channels,
            self.sample_rate,
            **vocoder_kwargs,
        )
        self.enc_q = PosteriorEncoder(
            spec_channels, inter_channels, hidden_channels, 5, 1, 16, gin_channels=gin_channels
        )
        self.flow = ResidualCouplingBlock(
            inter_channels, hidden_channels, 5, 1, 3, gin_channels=gin_channels
        )
        self.emb_g = nn.Embedding(spk_embed_dim, gin_channels)

    def forward(
        self,
        phone: torch.Tensor,
        phone_lengths: torch.Tensor,
        pitch: torch.Tensor | None,
        pitchf: torch.Tensor | None,
        y: torch.Tensor,
        y_lengths: torch.Tensor,
        ds: torch.Tensor,
    ) -> TrainOutput:
        """Training pass on a random segment.

        phone [B, T, dim], phone_lengths [B], pitch [B, T] coarse 1..255, pitchf [B, T] Hz,
        y [B, spec_channels, T] linear spectrogram, y_lengths [B], ds [B] speaker ids.
        """
        g = self.emb_g(ds).unsqueeze(-1)  # [B, gin, 1]
        m_p, logs_p, x_mask = self.enc_p(phone, pitch if self.use_f0 else None, phone_lengths)
        z, m_q, logs_q, y_mask = self.enc_q(y, y_lengths, g=g)
        z_p = self.flow(z, y_mask, g=g)
        z_slice, ids_slice = rand_slice_segments(z, y_lengths, self.segment_size)
        f0_slice = None
        if self.use_f0:
            if pitchf is None:
                raise ValueError("this model is pitch-guided: pitchf (Hz) is required")
            if pitchf.size(1) < self.segment_size:
                pitchf = torch.nn.functional.pad(pitchf, (0, self.segment_size - pitchf.size(1)))
            f0_slice = slice_segments(pitchf, ids_slice, self.segment_size)  # [B, S]
        wav = self.dec(z_slice, f0_slice, g=g)
        return TrainOutput(wav, ids_slice, x_mask, y_mask, z, z_p, m_p, logs_p, m_q, logs_q)

    @torch.no_grad()
    def infer(
        self,
        phone: torch.Tensor,
        phone_lengths: torch.Tensor,
        pitch: torch.Tensor | None = None,
        pitchf: torch.Tensor | None = None,
        sid: torch.Tensor | int = 0,
        *,
        noise_scale: float = INFER_NOISE_SCALE,
        decode: tuple[int, int] | None = None,
        vocode_frames: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Convert: phone [B, T, dim], lengths [B], pitch [B, T], pitchf [B, T] Hz, sid [B] ->
        (wav [B, 1, T·hop], x_mask [B, 1, T]). `decode=(start, n)` runs the vocoder on frames
        [start, start + n) only (live conversion: the encoder and flow see the whole window,
        the vocoder, most of the cost, only the new audio) -> wav [B, 1, n·hop]. `vocode_frames`:
        only the first so many frames are needed; a long input is vocoded in cache-sized
        pieces (`rvc.models.segments`)."""
        if self.use_f0 and pitchf is None:
            raise ValueError("this model is pitch-guided: pitchf (Hz) is required")
        if not torch.is_tensor(sid):
            sid = torch.full((phone.size(0),), int(sid), dtype=torch.long, device=phone.device)
        g = self.emb_g(sid).unsqueeze(-1)  # [B, gin, 1]
        m_p, logs_p, x_mask = self.enc_p(phone, pitch if self.use_f0 else None, phone_lengths)
        # drawn in logical order whatever m_p's memory layout (a channels-last m_p would
        # otherwise get its noise in another order: rvc/models/inference.py)
        noise = torch.randn_like(m_p, memory_format=torch.contiguous_format)
        z_p = (m_p + torch.exp(logs_p) * noise * noise_scale) * x_mask
        if decode is not None:
            # the flow is convolutional (4 couplings × 3 layers of kernel 5: ±24 frames), so it
            # runs on the decoded frames plus FLOW_CONTEXT each side, the same values there
            start, n = decode
            lo, hi = max(0, start - FLOW_CONTEXT), min(z_p.size(2), start + n + FLOW_CONTEXT)
            z = self.flow(z_p[:, :, lo:hi], x_mask[:, :, lo:hi], g=g, reverse=True)
            z = z[:, :, start - lo : start - lo + n]
            x_mask = x_mask[:, :, start : start + n]
            pitchf = None if pitchf is None else pitchf[:, start : start + n]
        else:
            z = self.flow(z_p, x_mask, g=g, reverse=True)
        dt = weight_dtype(self.dec)  # bf16 after for_inference; pitchf stays fp32 (NSF phase)
        f0 = pitchf if self.use_f0 else None
        if vocode_frames is not None and decode is None:
            wav = vocode(self.dec, (z * x_mask).to(dt), f0, g.to(dt), vocode_frames)
        else:
            wav = self.dec((z * x_mask).to(dt), f0, g=g.to(dt))
        return wav.float(), x_mask

    def for_inference(self, dtype: torch.dtype | None, device: str | torch.device) -> Synthesizer:
        """Ready for conversion (`rvc.models.inference.for_inference`): the vocoder, nearly all
        of the time, in `dtype`; the text encoder and flow stay fp32, where bf16 would cost
        5 dB of SNR (measured: HiFi-GAN NSF 35 vs 41 dB to fp32) for a few % of the time."""
        for_inference(self, None, device)
        for_inference(self.dec, dtype, device)
        if dtype is not None and hasattr(self.dec, "conv_post"):
            # the output layer in fp32: a bf16 waveform is quantised to 8 bits of mantissa
            fp32_boundary(self.dec.conv_post.float())
        return self

    def set_checkpointing(self, on: bool) -> Synthesizer:
        """Gradient checkpointing in training (`model.checkpointing`): the vocoder's stages
        (most of G's activations) and the WaveNet stacks of enc_q and the flow keep only their
        inputs and are recomputed in backward. Same results, less memory, a longer step;
        inference and export are unaffected (they run without gradients)."""
        from rvc.models.encoders import WN

        self.dec.checkpointing = bool(on)
        for m in self.modules():
            if isinstance(m, WN):
                m.checkpointing = bool(on)
        return self

    def remove_weight_norm(self) -> None:
        """Fold every weight norm into plain weights (faster inference; not for training)."""
        remove_weight_norm(self)
