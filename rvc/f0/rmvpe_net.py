"""The RMVPE pitch network (Wei et al. 2023): log-mel → deep residual U-Net → BiGRU → 360-bin salience.

Plain PyTorch. Module and parameter names follow the published `rmvpe.pt` (RVC's `E2E(4, 1, (2, 2))`)
so that file loads into `RMVPENet()` with `strict=True`:
`unet.encoder.bn`, `unet.encoder.layers.{i}.conv.{j}.conv.{0,1,3,4}` (+ `.shortcut`),
`unet.intermediate.layers.{i}...`, `unet.decoder.layers.{i}.conv1.{0,1}` / `.conv2.{j}...`, `cnn`,
`fc.0.gru` (bidirectional GRU), `fc.1` (Linear 512 → 360).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rvc.formats import ANALYSIS_HOP, ANALYSIS_RATE

N_MELS = 128
N_CLASSES = 360  # 20-cent bins
CENTS_OFFSET = 1997.3794084376191  # cents of bin 0 relative to 10 Hz (≈ 31.7 Hz)
SAMPLE_RATE = ANALYSIS_RATE
N_FFT = 1024
HOP = ANALYSIS_HOP
MEL_FMIN = 30.0
MEL_FMAX = 8000.0
LOG_CLAMP = 1e-5
TIME_MULTIPLE = 32  # five 2× poolings along time


class ConvBlockRes(nn.Module):
    """Two 3×3 conv-BN-ReLU layers plus a residual (1×1 conv when channels change)."""

    def __init__(self, in_ch: int, out_ch: int, momentum: float = 0.01):
        super().__init__()
        # indices 0/1/3/4 carry weights: the published names are `conv.0`, `conv.1`, `conv.3`, `conv.4`
        self.conv = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch, momentum=momentum),
            nn.ReLU(),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch, momentum=momentum),
            nn.ReLU(),
        )
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, T, F] → [B, C', T, F]
        skip = x if self.shortcut is None else self.shortcut(x)
        return self.conv(x) + skip


class ResEncoderBlock(nn.Module):
    """`n_blocks` residual blocks, then an optional average pool (the skip is taken before it)."""

    def __init__(self, in_ch: int, out_ch: int, pool: tuple[int, int] | None, n_blocks: int):
        super().__init__()
        self.conv = nn.ModuleList(
            [ConvBlockRes(in_ch if i == 0 else out_ch, out_ch) for i in range(n_blocks)]
        )
        self.pool = nn.AvgPool2d(pool) if pool is not None else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for block in self.conv:
            x = block(x)
        return x, (self.pool(x) if self.pool is not None else x)


class Encoder(nn.Module):
    """Input BatchNorm, then `n_layers` encoder blocks doubling channels and halving T and F."""

    def __init__(
        self, in_ch: int, n_layers: int, pool: tuple[int, int], n_blocks: int, out_ch: int
    ):
        super().__init__()
        self.bn = nn.BatchNorm2d(in_ch, momentum=0.01)
        layers = []
        for _ in range(n_layers):
            layers.append(ResEncoderBlock(in_ch, out_ch, pool, n_blocks))
            in_ch, out_ch = out_ch, out_ch * 2
        self.layers = nn.ModuleList(layers)
        self.out_channels = in_ch  # channels of the last block

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips = []
        x = self.bn(x)
        for layer in self.layers:
            skip, x = layer(x)
            skips.append(skip)
        return x, skips


class Intermediate(nn.Module):
    """The U-Net bottleneck: `n_layers` encoder blocks without pooling."""

    def __init__(self, in_ch: int, out_ch: int, n_layers: int, n_blocks: int):
        super().__init__()
        self.layers = nn.ModuleList(
            [
                ResEncoderBlock(in_ch if i == 0 else out_ch, out_ch, None, n_blocks)
                for i in range(n_layers)
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)[0]
        return x


class ResDecoderBlock(nn.Module):
    """Transposed-conv upsampling, concatenation with the encoder skip, residual blocks."""

    def __init__(self, in_ch: int, out_ch: int, stride: tuple[int, int], n_blocks: int):
        super().__init__()
        out_pad = (0, 1) if tuple(stride) == (1, 2) else (1, 1)
        self.conv1 = nn.Sequential(
            nn.ConvTranspose2d(
                in_ch, out_ch, 3, stride=stride, padding=1, output_padding=out_pad, bias=False
            ),
            nn.BatchNorm2d(out_ch, momentum=0.01),
            nn.ReLU(),
        )
        self.conv2 = nn.ModuleList(
            [ConvBlockRes(out_ch * 2 if i == 0 else out_ch, out_ch) for i in range(n_blocks)]
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = torch.cat((self.conv1(x), skip), dim=1)  # [B, 2·C', T, F]
        for block in self.conv2:
            x = block(x)
        return x


class Decoder(nn.Module):
    """`n_layers` decoder blocks halving channels, consuming the encoder skips in reverse."""

    def __init__(self, in_ch: int, n_layers: int, stride: tuple[int, int], n_blocks: int):
        super().__init__()
        layers = []
        for _ in range(n_layers):
            layers.append(ResDecoderBlock(in_ch, in_ch // 2, stride, n_blocks))
            in_ch //= 2
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        for layer, skip in zip(self.layers, reversed(skips), strict=True):
            x = layer(x, skip)
        return x


class DeepUnet(nn.Module):
    """Encoder → intermediate → decoder over the [T, F] log-mel image."""

    def __init__(
        self,
        pool: tuple[int, int],
        n_blocks: int,
        en_de_layers: int = 5,
        inter_layers: int = 4,
        in_channels: int = 1,
        en_out_channels: int = 16,
    ):
        super().__init__()
        self.encoder = Encoder(in_channels, en_de_layers, pool, n_blocks, en_out_channels)
        deepest = self.encoder.out_channels
        self.intermediate = Intermediate(deepest, deepest * 2, inter_layers, n_blocks)
        self.decoder = Decoder(deepest * 2, en_de_layers, pool, n_blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, 1, T, F] → [B, 16, T, F]
        x, skips = self.encoder(x)
        return self.decoder(self.intermediate(x), skips)


class BiGRU(nn.Module):
    """Bidirectional GRU returning only the output sequence (so it fits in `nn.Sequential`)."""

    def __init__(self, in_features: int, hidden: int, num_layers: int):
        super().__init__()
        self.gru = nn.GRU(in_features, hidden, num_layers, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, in] → [B, T, 2·hidden]
        return self.gru(x)[0]


class RMVPENet(nn.Module):
    """RMVPE's E2E network; defaults are the published model (`E2E(4, 1, (2, 2))`)."""

    def __init__(
        self,
        n_blocks: int = 4,
        n_gru: int = 1,
        pool: tuple[int, int] = (2, 2),
        en_de_layers: int = 5,
        inter_layers: int = 4,
        in_channels: int = 1,
        en_out_channels: int = 16,
    ):
        super().__init__()
        self.unet = DeepUnet(
            pool, n_blocks, en_de_layers, inter_layers, in_channels, en_out_channels
        )
        self.cnn = nn.Conv2d(en_out_channels, 3, 3, padding=1)
        if n_gru:
            self.fc = nn.Sequential(
                BiGRU(3 * N_MELS, 256, n_gru),
                nn.Linear(512, N_CLASSES),
                nn.Dropout(0.25),
                nn.Sigmoid(),
            )
        else:
            self.fc = nn.Sequential(
                nn.Linear(3 * N_MELS, N_CLASSES), nn.Dropout(0.25), nn.Sigmoid()
            )

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """Log-mel [B, 128, T] (T a multiple of 32) → salience [B, T, 360] in 0..1."""
        x = mel.transpose(-1, -2).unsqueeze(1)  # [B, 1, T, 128]
        x = self.cnn(self.unet(x))  # [B, 3, T, 128]
        x = x.transpose(1, 2).flatten(-2)  # [B, T, 384]
        return self.fc(x)


class RMVPEMel(nn.Module):
    """RMVPE's front end: centred STFT (hann 1024, hop 160) → HTK-mel 128 (30–8000 Hz, slaney norm) → log."""

    def __init__(self):
        super().__init__()
        import librosa

        basis = librosa.filters.mel(
            sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=MEL_FMIN, fmax=MEL_FMAX, htk=True
        )
        # non-persistent: rmvpe.pt holds only the network, never the front end
        self.register_buffer(
            "mel_basis", torch.from_numpy(basis).float(), persistent=False
        )  # [128, 513]
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio [B, T] at 16 kHz → log-mel [B, 128, T // 160 + 1]."""
        # reflect padding needs more than n_fft/2 samples; tiny clips fall back to zeros
        pad_mode = "reflect" if audio.shape[-1] > N_FFT // 2 else "constant"
        spec = torch.stft(
            audio.float(),
            N_FFT,
            hop_length=HOP,
            window=self.window,
            center=True,
            pad_mode=pad_mode,
            return_complex=True,
        )  # [B, 513, frames]
        mel = torch.matmul(self.mel_basis, spec.abs())  # [B, 128, frames]
        return torch.log(torch.clamp(mel, min=LOG_CLAMP))


def pad_time(mel: torch.Tensor) -> torch.Tensor:
    """Pad log-mel [B, 128, T] at the end to a multiple of 32 frames (reflect, as RVC/Applio)."""
    n = mel.shape[-1]
    n_pad = -n % TIME_MULTIPLE
    if n_pad == 0:
        return mel
    if n_pad < n:
        return F.pad(mel, (0, n_pad), mode="reflect")
    # too short to reflect: pad with the log of silence
    return F.pad(mel, (0, n_pad), mode="constant", value=float(np.log(LOG_CLAMP)))


def cents_table(device: torch.device | str = "cpu") -> torch.Tensor:
    """Cents (re 10 Hz) of the 360 salience bins."""
    return 20.0 * torch.arange(N_CLASSES, dtype=torch.float32, device=device) + CENTS_OFFSET


def salience_to_f0(salience: torch.Tensor, threshold: float = 0.03) -> torch.Tensor:
    """Salience [B, T, 360] → F0 Hz [B, T]: weighted mean of the 9 bins around the peak; 0 if peak ≤ threshold."""
    sal = salience.float()
    peak, center = sal.max(dim=-1)  # [B, T]
    # zero-pad 4 bins each side so a 9-bin window around any peak stays in range
    padded = F.pad(sal, (4, 4))  # [B, T, 368]
    table = F.pad(cents_table(sal.device), (4, 4))  # [368]
    idx = center.unsqueeze(-1) + torch.arange(9, device=sal.device)  # [B, T, 9] (padded coords)
    weights = torch.gather(padded, -1, idx)  # [B, T, 9]
    cents = (weights * table[idx]).sum(-1) / weights.sum(-1)  # [B, T]
    voiced = peak > threshold
    f0 = 10.0 * torch.pow(2.0, torch.where(voiced, cents, torch.zeros_like(cents)) / 1200.0)
    return torch.where(voiced, f0, torch.zeros_like(f0))
