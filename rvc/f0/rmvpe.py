"""RMVPE F0 estimator: our `RMVPENet` with the published `rmvpe.pt` weights."""

from __future__ import annotations

import os

import numpy as np
import torch

from rvc.f0.base import HOP, F0Estimator
from rvc.f0.frames import batch_equal_lengths
from rvc.f0.rmvpe_net import RMVPEMel, RMVPENet, pad_time, salience_to_f0
from rvc.formats import RVC_REPO
from rvc.utils.hub import resolve_file


class RMVPEEstimator(F0Estimator):
    """RMVPE (the default in RVC): robust on noisy / accompanied voice, 10 ms frames, ~31–2000 Hz.

    Weights come from `model_path` if given, else `filename` in the hub repo `repo_id` (cache
    first). They are loaded lazily on the first `compute`, so building the estimator never
    touches the disk or the network. Frames: the centred STFT gives T//160 + 1 frames (frame i
    centred on sample 160·i); the last is dropped. Frames outside [f0_min, f0_max] are unvoiced.
    """

    name = "rmvpe"

    def snug_length(self, n_samples: int) -> int:
        # T samples give T // 160 + 1 mel frames, padded to a multiple of 32 (RVC's realtime
        # sizes its span as 32k frames − 1 for the same reason)
        return ((n_samples // HOP + 1 + 31) // 32 * 32 - 1) * HOP

    def __init__(
        self,
        f0_min: float = 50.0,
        f0_max: float = 1100.0,
        device: str = "cpu",
        model_path: str | os.PathLike | None = None,
        repo_id: str | None = RVC_REPO,
        filename: str | None = "rmvpe.pt",
        threshold: float = 0.03,
        batch_size: int = 16,
        half: bool = False,
    ):
        super().__init__(f0_min=f0_min, f0_max=f0_max, device=device)
        self.model_path = model_path
        self.repo_id = repo_id
        self.filename = filename
        self.threshold = threshold
        self.batch_size = max(int(batch_size), 1)
        self.half = half
        self._net: RMVPENet | None = None
        self._mel: RMVPEMel | None = None

    def load(self) -> RMVPENet:
        """Load the network once (resolving the weight file) and cache it on the instance."""
        if self._net is None:
            path = resolve_file(self.repo_id, self.filename, self.model_path)
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as e:
                raise ValueError(
                    f"cannot read RMVPE weights {path}: {type(e).__name__}: {e}"
                ) from e
            if isinstance(state, dict) and isinstance(state.get("model"), dict):
                state = state["model"]  # tolerate {"model": state_dict} wrappers
            net = RMVPENet()
            try:
                net.load_state_dict(state, strict=True)
            except (RuntimeError, TypeError, AttributeError) as e:
                raise ValueError(f"{path} is not an RMVPE state dict: {e}") from e
            device = torch.device(self.device)
            if self.half and device.type == "cuda" and self.dtype is None:
                self.dtype = torch.float16  # `half`: only pays off (and is well supported) on GPUs
            self._net = self._prepare(net)
            self._mel = RMVPEMel().to(device).eval()
        return self._net

    def networks(self) -> list[torch.nn.Module]:
        return [self._net] if self._net is not None else []

    @torch.inference_mode()
    def salience(self, audio: torch.Tensor) -> torch.Tensor:
        """Equal-length 16 kHz clips [B, T] → salience [B, T // 160 + 1, 360] (float32)."""
        from rvc.models.inference import weight_dtype

        net = self.load()
        with torch.autocast(torch.device(self.device).type, enabled=False):  # log-mel in fp32
            mel = self._mel(audio.to(self.device).float())  # [B, 128, N]
        n = mel.shape[-1]
        out = net(pad_time(mel).to(weight_dtype(net)))  # [B, N', 360]
        return out[:, :n].float()

    def compute(self, audio: np.ndarray) -> np.ndarray:
        return self.compute_batch([audio])[0]

    def compute_batch(self, audios: list[np.ndarray]) -> list[np.ndarray]:
        """Equal-length clips share a forward pass (up to `batch_size`)."""
        return batch_equal_lengths(
            audios, self.batch_size, self._infer_f0, self.f0_min, self.f0_max
        )

    def _infer_f0(self, audio: np.ndarray) -> np.ndarray:
        """[B, T] equal-length clips → F0 [B, N] Hz."""
        return salience_to_f0(self.salience(torch.from_numpy(audio)), self.threshold).cpu().numpy()
