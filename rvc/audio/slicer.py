"""Cut audio into training slices; every function returns sample ranges `[(start, end), ...]`.

- `slice_auto`: RVC's silence slicer (the `Slicer` of RVC WebUI / Applio / ultimate-rvc:
  RMS over centred frames, cut in silences longer than `min_interval` once the current
  region is at least `min_length` long, keeping up to `max_sil_kept` of silence at each side
  of a cut), then each region split into `chunk_len` chunks overlapping by `overlap`.
- `slice_simple`: fixed `chunk_len` chunks with `overlap`, no silence detection.
- `slice_skip`: the whole file as one range.

Chunking (`chunk_ranges`) differs from RVC in one way: RVC lets the last piece of a region grow
to `chunk_len + overlap` (3.3 s); here every chunk is at most `chunk_len`, and consecutive
chunks always overlap by exactly `overlap`. The tail left after the last full chunk becomes
its own shorter chunk if it is at least `min_chunk` long (overlap included); a shorter tail is
dropped, losing at most `min_chunk - overlap` seconds at a region end (usually the kept
silence). Regions shorter than `min_chunk` are dropped; `min_chunk=0` keeps everything.
"""

from __future__ import annotations

import numpy as np

Range = tuple[int, int]


def chunk_ranges(
    start: int,
    end: int,
    sr: int,
    chunk_len: float = 3.0,
    overlap: float = 0.3,
    min_chunk: float = 0.5,
) -> list[Range]:
    """Split `[start, end)` into chunks of <= `chunk_len` s overlapping by `overlap` s (see module doc)."""
    n_chunk, n_overlap = round(chunk_len * sr), round(overlap * sr)
    n_min = round(min_chunk * sr)
    if not 0 <= n_overlap < n_chunk:
        raise ValueError(
            f"need 0 <= overlap < chunk_len, got overlap={overlap}, chunk_len={chunk_len}"
        )
    if min_chunk > chunk_len:
        raise ValueError(f"min_chunk ({min_chunk}) must not exceed chunk_len ({chunk_len})")
    length = end - start
    if length < max(1, n_min):
        return []
    if length <= n_chunk:
        return [(start, end)]
    step = n_chunk - n_overlap
    n_full = 1 + (length - n_chunk) // step
    starts = start + step * np.arange(n_full)  # [n_full]
    out = [(int(s), int(s) + n_chunk) for s in starts]
    tail_start = int(starts[-1]) + step
    if end - tail_start > n_overlap and end - tail_start >= n_min:
        out.append((tail_start, end))  # a shorter last chunk, same overlap
    return out


def _frame_rms(audio: np.ndarray, hop: int, win: int) -> np.ndarray:
    """RMS of centred frames (frame i spans samples [i*hop - win//2, +win), zero-padded)."""
    t = len(audio)
    pad = win // 2
    n_frames = 1 + (t + 2 * pad - win) // hop
    lo = np.clip(np.arange(n_frames) * hop - pad, 0, t)  # [F]
    hi = np.clip(np.arange(n_frames) * hop - pad + win, 0, t)  # [F]
    # prefix sums of squares evaluated only at the frame edges: exact (float64) and without a
    # full-length float64 cumsum, which would be 8 bytes per sample on hour-long files
    edges = np.unique(np.concatenate(([0], lo, hi)))
    inner = edges[edges < t]
    seg = np.add.reduceat(np.square(audio, dtype=np.float32), inner, dtype=np.float64)
    prefix = np.concatenate(([0.0], np.cumsum(seg)))  # sum of squares before each of inner + [t]
    pos = np.concatenate((inner, [t]))
    energy = prefix[np.searchsorted(pos, hi)] - prefix[np.searchsorted(pos, lo)]
    return np.sqrt(np.maximum(energy, 0.0) / win)


def _silence_runs(silent: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of True as (first, end-exclusive) frame indices."""
    d = np.diff(np.concatenate(([0], silent.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True))


def silence_regions(
    audio: np.ndarray,
    sr: int,
    threshold_db: float = -42.0,
    min_length: float = 1.5,
    min_interval: float = 0.4,
    hop: float = 0.015,
    max_sil_kept: float = 0.5,
) -> list[Range]:
    """RVC's silence slicer: sample ranges of the sound between cut silences (not chunked)."""
    if not min_length >= min_interval >= hop:
        raise ValueError("need min_length >= min_interval >= hop")
    if max_sil_kept < hop:
        raise ValueError("need max_sil_kept >= hop")
    x = np.asarray(audio, dtype=np.float32)
    t = len(x)
    hop_n = round(sr * hop)
    win = min(round(sr * min_interval), 4 * hop_n)
    min_len_f = round(sr * min_length / hop_n)
    min_int_f = round(sr * min_interval / hop_n)
    keep_f = round(sr * max_sil_kept / hop_n)
    if t == 0:
        return []
    rms = _frame_rms(x, hop_n, win)  # [F]
    n = len(rms)
    silent = rms < 10 ** (threshold_db / 20)

    def argmin(a: int, b: int) -> int:  # first quietest frame in [a, b)
        return a + int(np.argmin(rms[a:b]))

    # decisions depend on where the previous cut fell, so walk the silent runs (few) in order
    tags: list[tuple[int, int]] = []
    clip_start = 0
    for s0, i in _silence_runs(silent):
        if i == n:  # trailing silence
            if n - s0 >= min_int_f:
                pos = argmin(s0, min(n, s0 + keep_f) + 1)
                tags.append((pos, n + 1))
            break
        leading = s0 == 0 and i > keep_f
        cut_middle = i - s0 >= min_int_f and i - clip_start >= min_len_f
        if not leading and not cut_middle:
            continue  # a short pause stays inside the region
        if i - s0 <= keep_f:  # short silence: one cut at its quietest frame
            pos = argmin(s0, i + 1)
            tags.append((0, pos) if s0 == 0 else (pos, pos))
            clip_start = pos
            continue
        pos_l = argmin(s0, s0 + keep_f + 1)
        pos_r = argmin(i - keep_f, i + 1)
        if i - s0 <= 2 * keep_f and s0 != 0:  # medium silence: cut around its quietest middle
            pos = argmin(i - keep_f, s0 + keep_f + 1)
            tags.append((min(pos_l, pos), max(pos_r, pos)))
            clip_start = max(pos_r, pos)
        else:  # long (or leading) silence: keep at most `max_sil_kept` on each side
            tags.append((0, pos_r) if s0 == 0 else (pos_l, pos_r))
            clip_start = pos_r
    if not tags:
        return [(0, t)]
    bounds = []
    if tags[0][0] > 0:
        bounds.append((0, tags[0][0]))
    bounds += [(tags[k][1], tags[k + 1][0]) for k in range(len(tags) - 1)]
    if tags[-1][1] < n:
        bounds.append((tags[-1][1], n))
    ranges = [(a * hop_n, min(t, b * hop_n)) for a, b in bounds]
    return [(a, b) for a, b in ranges if b > a]


def slice_auto(
    audio: np.ndarray,
    sr: int,
    threshold_db: float = -42.0,
    min_length: float = 1.5,
    min_interval: float = 0.4,
    max_sil_kept: float = 0.5,
    chunk_len: float = 3.0,
    overlap: float = 0.3,
    min_chunk: float = 0.5,
    hop: float = 0.015,
) -> list[Range]:
    """Cut at silences (RVC's slicer), then split each region into overlapping chunks."""
    regions = silence_regions(audio, sr, threshold_db, min_length, min_interval, hop, max_sil_kept)
    return [c for a, b in regions for c in chunk_ranges(a, b, sr, chunk_len, overlap, min_chunk)]


def slice_simple(
    audio: np.ndarray, sr: int, chunk_len: float = 3.0, overlap: float = 0.3, min_chunk: float = 0.5
) -> list[Range]:
    """Fixed `chunk_len` chunks overlapping by `overlap`, ignoring silence."""
    return chunk_ranges(0, len(audio), sr, chunk_len, overlap, min_chunk)


def slice_skip(audio: np.ndarray, sr: int | None = None) -> list[Range]:
    """No cutting: one range covering the whole file (empty audio gives no range)."""
    return [(0, len(audio))] if len(audio) else []
