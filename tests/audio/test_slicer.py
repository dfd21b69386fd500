import numpy as np
import pytest

from rvc.audio import slicer
from rvc.audio.slicer import chunk_ranges, silence_regions, slice_auto, slice_simple, slice_skip

SR = 16000
TOL = 0.045  # seconds: half the 60 ms RMS window (a frame is silent only once its whole window
# is) plus one 15 ms hop of quantisation


def tone(seconds: float, freq: float = 220.0, amp: float = 0.5) -> np.ndarray:
    return amp * np.sin(2 * np.pi * freq * np.arange(round(seconds * SR)) / SR)


def sil(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SR))


def build(*parts: np.ndarray, noise_db: float | None = None, seed: int = 0) -> np.ndarray:
    x = np.concatenate(parts)
    if noise_db is not None:
        x = x + 10 ** (noise_db / 20) * np.random.default_rng(seed).standard_normal(len(x))
    return x.astype(np.float32)


def secs(ranges):
    return [(a / SR, b / SR) for a, b in ranges]


@pytest.mark.parametrize("noise_db", [None, -70.0])
def test_one_silence_gives_two_regions(noise_db):
    x = build(tone(2.0), sil(1.0), tone(2.5), noise_db=noise_db)
    (a1, b1), (a2, b2) = secs(silence_regions(x, SR, max_sil_kept=0.5))
    assert a1 == 0.0 and b2 == pytest.approx(len(x) / SR)
    # the tones are kept whole; at most max_sil_kept of the silence stays at each cut
    assert 2.0 - TOL <= b1 <= 2.0 + 0.5 + TOL
    assert 3.0 - 0.5 - TOL <= a2 <= 3.0 + TOL
    assert b1 < a2


def test_leading_and_trailing_silence_trimmed():
    x = build(sil(1.5), tone(2.0), sil(2.0), noise_db=-80.0)
    [(a, b)] = secs(silence_regions(x, SR, max_sil_kept=0.3))
    assert 1.5 - 0.3 - TOL <= a <= 1.5 + TOL
    assert 3.5 - TOL <= b <= 3.5 + 0.3 + TOL


def test_short_pause_and_short_region_are_not_cut():
    # a pause shorter than min_interval stays inside the region
    x = build(tone(2.0), sil(0.2), tone(2.0))
    assert silence_regions(x, SR, min_interval=0.4) == [(0, len(x))]
    # a long pause is not cut while the current region is shorter than min_length
    y = build(tone(0.5), sil(0.6), tone(2.0))
    assert silence_regions(y, SR, min_length=1.5) == [(0, len(y))]
    assert len(silence_regions(y, SR, min_length=0.5)) == 2


def test_threshold_decides_what_is_silence():
    x = build(tone(2.0), tone(1.0, amp=0.003), tone(2.0))  # quiet part at -50 dBFS
    assert len(silence_regions(x, SR, threshold_db=-42)) == 2
    assert len(silence_regions(x, SR, threshold_db=-60)) == 1


def test_frame_rms_matches_direct_computation():
    rng = np.random.default_rng(3)
    for t, hop, win in [(1000, 37, 150), (4801, 240, 960), (50, 16, 64), (999, 10, 33)]:
        x = rng.standard_normal(t).astype(np.float32)
        got = slicer._frame_rms(x, hop, win)
        padded = np.pad(x.astype(np.float64), (win // 2, win // 2))
        want = [
            np.sqrt(np.mean(padded[i : i + win] ** 2)) for i in range(0, len(padded) - win + 1, hop)
        ]
        np.testing.assert_allclose(got, want, rtol=1e-5)


def check_chunks(ranges, start, end, chunk_len, overlap, min_chunk):
    n_chunk, n_ov, n_min = round(chunk_len * SR), round(overlap * SR), round(min_chunk * SR)
    assert all(b - a <= n_chunk for a, b in ranges)
    assert all(b - a >= n_min for a, b in ranges)
    assert ranges[0][0] == start
    for (_, b0), (a1, _) in zip(ranges, ranges[1:], strict=False):
        assert b0 - a1 == n_ov  # overlaps exactly as configured
    # nothing lost except a tail shorter than min_chunk (overlap included)
    assert end - ranges[-1][1] < max(1, n_min - n_ov)


@pytest.mark.parametrize("seconds", [3.0, 3.01, 5.6, 5.79, 10.0, 17.3])
@pytest.mark.parametrize("min_chunk", [0.0, 0.5, 1.0])
def test_chunk_ranges_properties(seconds, min_chunk):
    start = 123
    end = start + round(seconds * SR)
    ranges = chunk_ranges(start, end, SR, chunk_len=3.0, overlap=0.3, min_chunk=min_chunk)
    check_chunks(ranges, start, end, 3.0, 0.3, min_chunk)


def test_chunk_ranges_edge_cases():
    assert chunk_ranges(0, 2 * SR, SR) == [(0, 2 * SR)]  # shorter than a chunk: kept whole
    assert chunk_ranges(0, SR // 4, SR, min_chunk=0.5) == []  # shorter than min_chunk: dropped
    assert chunk_ranges(0, SR // 4, SR, min_chunk=0.0) == [(0, SR // 4)]
    # 5.8 s: chunks [0, 3) and [2.7, 5.7); the 0.4 s tail (0.1 s new audio) < 0.5 s is dropped
    assert secs(chunk_ranges(0, round(5.8 * SR), SR, min_chunk=0.5)) == [(0, 3.0), (2.7, 5.7)]
    assert secs(chunk_ranges(0, round(5.8 * SR), SR, min_chunk=0.3))[-1] == (5.4, 5.8)
    with pytest.raises(ValueError, match="overlap"):
        chunk_ranges(0, SR * 10, SR, chunk_len=1.0, overlap=1.0)
    with pytest.raises(ValueError, match="min_chunk"):
        chunk_ranges(0, SR * 10, SR, chunk_len=1.0, overlap=0.1, min_chunk=2.0)


def test_slice_auto_chunks_each_region():
    x = build(tone(7.0), sil(1.0), tone(2.0), sil(1.0), tone(0.2), noise_db=-80.0)
    regions = silence_regions(x, SR)
    chunks = slice_auto(x, SR, chunk_len=3.0, overlap=0.3, min_chunk=0.5)
    assert len(regions) == 3
    per_region = [[c for c in chunks if a <= c[0] and c[1] <= b] for a, b in regions]
    assert sum(map(len, per_region)) == len(chunks)
    assert len(per_region[0]) == 3  # 7 s + kept silence → 3 chunks
    for (a, b), rs in zip(regions[:2], per_region[:2], strict=True):
        check_chunks(rs, a, b, 3.0, 0.3, 0.5)
    # the 0.2 s blip with its kept silence is short: dropped with min_chunk=1, kept with 0.5
    assert len(slice_auto(x, SR, min_chunk=1.0)) == len(chunks) - 1


def test_slice_simple_and_skip():
    x = build(tone(10.0), sil(2.0))
    ranges = slice_simple(x, SR, chunk_len=2.0, overlap=0.5, min_chunk=0.5)
    # 12 s: full chunks start every 1.5 s up to [9, 11), then the 1.5 s tail [10.5, 12)
    assert secs(ranges) == [(1.5 * k, 1.5 * k + 2.0) for k in range(7)] + [(10.5, 12.0)]
    check_chunks(ranges, 0, len(x), 2.0, 0.5, 0.5)
    assert slice_skip(x) == [(0, len(x))]
    assert slice_skip(np.zeros(0)) == []
    assert slice_auto(np.zeros(0, np.float32), SR) == []


def test_random_lengths_never_exceed_bounds():
    rng = np.random.default_rng(7)
    for _ in range(5):
        x = build(
            *[
                tone(rng.uniform(0.1, 6)) if k % 2 == 0 else sil(rng.uniform(0.1, 1.5))
                for k in range(5)
            ]
        )
        for a, b in slice_auto(x, SR):
            assert 0 <= a < b <= len(x) and b - a <= 3 * SR


def test_invalid_parameters():
    x = build(tone(3.0))
    with pytest.raises(ValueError):
        silence_regions(x, SR, min_length=0.3, min_interval=0.4)
    with pytest.raises(ValueError):
        silence_regions(x, SR, max_sil_kept=0.001)
