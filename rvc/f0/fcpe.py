"""FCPE F0 estimator through torchfcpe, with its packaged (bundled) weights."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import torch

from rvc.f0.base import SAMPLE_RATE, F0Estimator
from rvc.f0.frames import batch_equal_lengths


class FCPEEstimator(F0Estimator):
    """FCPE (fast context-based pitch estimation): fast and accurate on clean voice.

    Settings as RVC/Applio: `local_argmax` decoding, salience threshold 0.006, no interpolation of
    unvoiced frames. torchfcpe returns T//160 + 1 frames (its last repeats the one before; frame
    i covers samples 160·i − 432 … 160·i + 592); we keep the first T//160. Frames outside
    [f0_min, f0_max] are set unvoiced (torchfcpe would clamp them). A clip with samples outside
    [-1, 1] (a full-scale recording after the 48 Hz high-pass overshoots) is scaled to peak 1
    first: torchfcpe prints an error line for such input, and pitch does not depend on the gain.
    """

    name = "fcpe"

    def __init__(
        self,
        f0_min: float = 50.0,
        f0_max: float = 1100.0,
        device: str = "cpu",
        threshold: float = 0.006,
        decoder_mode: str = "local_argmax",
        batch_size: int = 16,
    ):
        super().__init__(f0_min=f0_min, f0_max=f0_max, device=device)
        if decoder_mode not in ("local_argmax", "argmax"):
            raise ValueError(f"FCPE decoder_mode must be local_argmax|argmax, got {decoder_mode!r}")
        self.threshold = threshold
        self.decoder_mode = decoder_mode
        self.batch_size = max(int(batch_size), 1)
        self._model: torch.nn.Module | None = None

    def load(self) -> torch.nn.Module:
        """Spawn torchfcpe's bundled model once, cached on the instance."""
        if self._model is None:
            from torchfcpe import spawn_bundled_infer_model

            # torchfcpe prints [INFO]/[WARN] banners on every load; keep pipeline output clean
            with contextlib.redirect_stdout(io.StringIO()):
                self._model = spawn_bundled_infer_model(device=str(self.device)).eval()
            for net in self.networks():
                self._prepare(net)
        return self._model

    def networks(self) -> list[torch.nn.Module]:
        """The network's layers, not torchfcpe's mel front end or its cent decoding (fp32)."""
        if self._model is None:
            return []
        net = self._model.model
        return [net.input_stack, net.net, net.norm, net.output_proj]

    @torch.inference_mode()
    def _infer(self, audio: np.ndarray) -> np.ndarray:
        """Equal-length clips [B, T] → F0 [B, T // 160 + 1] in Hz."""
        model = self.load()
        peak = np.abs(audio).max(axis=-1, keepdims=True)  # [B, 1]; per clip: batching stays exact
        audio = np.where(peak > 1.0, audio / np.maximum(peak, 1.0), audio).astype(np.float32)
        wav = torch.from_numpy(audio).unsqueeze(-1)  # [B, T, 1]
        f0 = model.infer(
            wav,
            sr=SAMPLE_RATE,
            decoder_mode=self.decoder_mode,
            threshold=self.threshold,
            f0_min=self.f0_min,
            f0_max=None,  # we mask out-of-range frames ourselves instead of clamping
            interp_uv=False,
        )  # [B, N, 1]
        return f0.squeeze(-1).float().cpu().numpy()

    def compute(self, audio: np.ndarray) -> np.ndarray:
        return self.compute_batch([audio])[0]

    def compute_batch(self, audios: list[np.ndarray]) -> list[np.ndarray]:
        """Equal-length clips share a forward pass (up to `batch_size`)."""
        return batch_equal_lengths(audios, self.batch_size, self._infer, self.f0_min, self.f0_max)
