"""A deterministic synthetic speaker: the offline demo dataset (no third-party recordings).

Recipe (a tiny Klatt-style cascade formant synthesiser, all vectorised numpy/scipy):

1. **Plan** (`plan_utterance`): phrases of 6–12 words separated by long pauses (0.5–1.0 s);
   words of 1–4 syllables, 20 % of them separated by short pauses (0.1–0.3 s); a syllable is an
   optional consonant (fricative s/sh/f/h, stop p/t/k = closure + burst, or voiced m/n/l)
   then a vowel (a, e, i, o, u, ae), sometimes a coda. One stressed syllable per word.
2. **Pitch**: speaker base F0 × phrase declination (+1..3 → −1.5..−3 semitones), Gaussian
   accents on stressed vowels (+1.5..4 st), an occasional question rise at a phrase end, and a
   slow random wander (±0.5 st). No vibrato.
3. **Source**: a Rosenberg glottal-flow pulse train driven by the integrated F0 (per-cycle
   jitter 0.5 %, shimmer 4 %); its time derivative (lip radiation) plus a little pulsed
   aspiration noise, shaped by a smooth amplitude envelope per voiced run.
4. **Vocal tract**: a cascade of five unity-DC-gain 2nd-order resonators (F1–F4 from the
   segment tables, a fixed F5 for high-frequency presence) whose frequencies glide between segment targets; coefficients change every 5 ms block and the
   filter state carries over (`sosfilt` with `zi`), so transitions are click-free.
5. **Noise**: fricatives and stop bursts are band-pass filtered noise with their own
   envelopes; a −72 dBFS room noise floor keeps pauses far below the −42 dB slicer threshold.

`render` also returns the true F0 at 10 ms hops (0 where unvoiced), written as sidecars under
`truth/` by `make_demo_dataset` so F0 estimators can be tested against it.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import butter, sosfilt

from rvc.utils.atomic import atomic_path, save_numpy

# male-adult formant targets F1..F4 in Hz (Peterson & Barney / Hillenbrand averages)
VOWELS = {
    "a": (730, 1090, 2440, 3400),
    "e": (530, 1840, 2480, 3450),
    "i": (280, 2250, 2900, 3500),
    "o": (570, 840, 2410, 3300),
    "u": (310, 870, 2250, 3300),
    "ae": (660, 1720, 2410, 3400),
}
VOICED_CONS = {
    "m": (280, 1000, 2200, 3300),
    "n": (280, 1600, 2500, 3400),
    "l": (360, 1100, 2600, 3400),
}
CONS_AMP = {"m": 0.3, "n": 0.3, "l": 0.45}
BANDWIDTHS = np.array([80.0, 100.0, 150.0, 250.0, 300.0])
F5 = 4500.0
# noise consonants: (low Hz, high Hz, level relative to a stressed vowel's RMS)
FRICATIVES = {
    "s": (4000, 9000, 0.3),
    "sh": (2000, 5500, 0.3),
    "f": (1200, 8000, 0.12),
    "h": (400, 3500, 0.1),
}
STOPS = {"p": (400, 2000, 0.5), "t": (3000, 8000, 0.5), "k": (1500, 3500, 0.5)}
ONSETS = ["s", "sh", "f", "h", "p", "t", "k", "m", "n", "l"]
CODAS = ["m", "n", "l", "s", "t"]
# (base F0 Hz, formant scale) per speaker id: a low male, a female-like, a mid and a deep voice
SPEAKERS = [(120.0, 1.0), (210.0, 1.17), (165.0, 1.08), (95.0, 0.93)]
BLOCK_S = 0.005  # formant update period
VOICE_RMS = 0.1  # -20 dBFS on voiced stretches
NOISE_FLOOR_DB = -72.0


@dataclass
class Segment:
    """One planned sound: kind is 'vowel', 'voiced' (m/n/l), 'fric' or 'stop'."""

    kind: str
    label: str
    t0: float
    t1: float
    amp: float = 1.0
    accent: float = 0.0  # semitones of pitch accent (vowels only)
    accent_t: float = 0.0  # centre of the accent


@dataclass
class Plan:
    """An utterance plan: segments in time order and phrases (t0, t1, st_start, st_end)."""

    duration: float
    segments: list[Segment] = field(default_factory=list)
    phrases: list[tuple[float, float, float, float]] = field(default_factory=list)


def _word(rng: np.random.Generator, t: float) -> list[Segment]:
    """Syllables of one word starting at time t."""
    n_syl = int(rng.choice([1, 2, 3, 4], p=[0.3, 0.35, 0.25, 0.1]))
    stress, accented = int(rng.integers(n_syl)), rng.random() < 0.6
    segs: list[Segment] = []

    def add(kind: str, label: str, dur: float, **kw: float) -> None:
        nonlocal t
        segs.append(Segment(kind, label, t, t + dur, **kw))
        t += dur

    def consonant(label: str) -> None:
        if label in VOICED_CONS:
            add("voiced", label, rng.uniform(0.04, 0.08), amp=CONS_AMP[label])
        elif label in FRICATIVES:
            add("fric", label, rng.uniform(0.06, 0.12), amp=FRICATIVES[label][2])
        else:  # closure (silence) then a 12 ms burst at its end
            add("stop", label, rng.uniform(0.04, 0.07), amp=STOPS[label][2])

    for i in range(n_syl):
        if rng.random() < 0.75:
            consonant(str(rng.choice(ONSETS)))
        stressed = i == stress
        dur = rng.uniform(0.14, 0.24) if stressed else rng.uniform(0.07, 0.13)
        amp = 1.0 if stressed else rng.uniform(0.55, 0.75)
        acc = rng.uniform(1.5, 4.0) if stressed and accented else 0.0
        add("vowel", str(rng.choice(list(VOWELS))), dur, amp=amp, accent=acc, accent_t=t + dur / 2)
        if rng.random() < 0.25:
            consonant(str(rng.choice(CODAS)))
    return segs


def plan_utterance(rng: np.random.Generator, duration: float) -> Plan:
    """Plan phrases of words that fit in `duration` seconds (trailing silence pads the rest)."""
    plan, t, end = Plan(duration), rng.uniform(0.2, 0.4), duration - 0.25
    while True:
        words: list[Segment] = []
        full = False
        for w in range(int(rng.integers(6, 13))):
            start = t if w == 0 or rng.random() < 0.8 else t + rng.uniform(0.1, 0.3)
            word = _word(rng, start)
            if full := word[-1].t1 > end:
                break
            words += word
            t = word[-1].t1
        if not words:
            return plan
        vowels = [s for s in words if s.kind == "vowel"]
        for s in vowels:  # phrase-level loudness declination
            s.amp *= 1.0 - 0.3 * (s.t0 - words[0].t0) / max(t - words[0].t0, 1e-3)
        if rng.random() < 0.25:  # question-like final rise
            vowels[-1].accent, vowels[-1].accent_t = rng.uniform(3.0, 5.0), vowels[-1].t1
        plan.segments += words
        plan.phrases.append((words[0].t0, t, rng.uniform(1.0, 3.0), rng.uniform(-3.0, -1.5)))
        if full:
            return plan
        t += rng.uniform(0.5, 1.0)


def _band_sos(lo: float, hi: float, sr: int) -> np.ndarray:
    """4th-order Butterworth band-pass, clamped below Nyquist."""
    hi = min(hi, 0.45 * sr)
    return butter(2, [min(lo, 0.5 * hi), hi], btype="bandpass", fs=sr, output="sos")


def render(
    plan: Plan, rng: np.random.Generator, sr: int, speaker: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Render a plan: float32 audio [T] and the true F0 in Hz at 10 ms hops [T * 100 // sr]."""
    if not 0 <= speaker < len(SPEAKERS):
        raise ValueError(f"speaker must be in 0..{len(SPEAKERS) - 1}, got {speaker}")
    base_f0, fscale = SPEAKERS[speaker]
    n = int(round(plan.duration * sr))
    hop = max(1, int(round(BLOCK_S * sr)))
    n_blocks = -(-n // hop)
    tc = (np.arange(n_blocks) + 0.5) * hop / sr  # block centres [B]
    ts = np.arange(n) / sr  # [T]
    floor = 10 ** (NOISE_FLOOR_DB / 20) * rng.standard_normal(n)
    voiced = [s for s in plan.segments if s.kind in ("vowel", "voiced")]
    if not voiced:  # too short for a single word: room noise only
        return floor.astype(np.float32), np.zeros(n * 100 // sr, np.float32)

    # pitch contour in semitones on the block grid
    pt = np.array([[p[0], p[2], p[1], p[3]] for p in plan.phrases])
    st = np.interp(tc, pt[:, [0, 2]].ravel(), pt[:, [1, 3]].ravel())
    acc = [(s.accent, s.accent_t, 0.35 * (s.t1 - s.t0)) for s in voiced if s.accent]
    if acc:
        a, mu, sig = np.array(acc).T[:, :, None]
        st += (a * np.exp(-0.5 * ((tc[None] - mu) / sig) ** 2)).sum(0)
    wander = np.convolve(rng.standard_normal(n_blocks + 80), np.hanning(81), "valid")
    st += 0.5 * wander / (np.abs(wander).max() + 1e-9)
    f0_blocks = base_f0 * 2.0 ** (st / 12.0)  # [B]

    # amplitude envelope of each voiced run (consecutive voiced segments) and formant tracks
    env_t, env_v, fm_t, fm_v = [], [], [], []
    runs: list[list[Segment]] = []
    for s in voiced:
        if runs and runs[-1][-1].t1 == s.t0:
            runs[-1].append(s)
        else:
            runs.append([s])
        frac = 0.3 if s.kind == "vowel" else 0.2
        target = np.array([*(VOWELS | VOICED_CONS)[s.label], F5]) * fscale
        fm_t += [s.t0 + frac * (s.t1 - s.t0), s.t1 - frac * (s.t1 - s.t0)]
        fm_v += [target, target]
    for run in runs:
        t0, t1 = run[0].t0 + 0.015, run[-1].t1 - 0.025
        mids = [((s.t0 + s.t1) / 2, s.amp) for s in run if t0 < (s.t0 + s.t1) / 2 < t1]
        pts = [(run[0].t0, 0.0), (t0, run[0].amp), *mids, (t1, run[-1].amp), (run[-1].t1, 0.0)]
        env_t += [p[0] for p in pts]
        env_v += [p[1] for p in pts]
    env = np.interp(ts, env_t, env_v)  # [T]
    fm = np.stack([np.interp(tc, fm_t, np.array(fm_v)[:, k]) for k in range(5)], 1)  # [B, 5]

    # glottal source: Rosenberg flow from the integrated F0, per-cycle jitter and shimmer
    f0_s = np.interp(ts, tc, f0_blocks)
    cycle = np.floor(np.cumsum(f0_s / sr)).astype(np.int64)
    n_cyc = int(cycle[-1]) + 2
    phase = np.cumsum(f0_s * (1 + 0.005 * rng.standard_normal(n_cyc))[cycle] / sr)
    ph = phase % 1.0
    tp, tn = 0.4, 0.16  # opening and closing fractions of the period
    closing = np.where(ph < tp + tn, np.cos(np.pi * (ph - tp) / (2 * tn)), 0.0)
    flow = np.where(ph < tp, 0.5 * (1 - np.cos(np.pi * ph / tp)), closing)
    dflow = np.diff(flow, prepend=0.0) * sr / f0_s  # lip radiation ≈ derivative
    shimmer = (1 + 0.04 * rng.standard_normal(n_cyc))[cycle]
    exc = (dflow * shimmer + 0.4 * flow * rng.standard_normal(n)) * env

    # cascade of unity-DC-gain resonators, coefficients per 5 ms block
    bw = BANDWIDTHS * fscale
    r = np.exp(-np.pi * bw / sr)
    b1 = 2 * r * np.cos(2 * np.pi * np.minimum(fm, 0.45 * sr) / sr)  # [B, 5]
    c = -(r**2) * np.ones_like(b1)
    sos = np.zeros((n_blocks, 5, 6))
    sos[..., 0], sos[..., 3], sos[..., 4], sos[..., 5] = 1 - b1 - c, 1.0, -b1, -c
    voice, zi = np.zeros(n), np.zeros((5, 2))
    for b in range(n_blocks):
        x = exc[b * hop : (b + 1) * hop]
        if x.any() or np.abs(zi).max() > 1e-9:
            voice[b * hop : (b + 1) * hop], zi = sosfilt(sos[b], x, zi=zi)
    voice *= VOICE_RMS / np.sqrt(np.mean(voice[env > 0.5 * env.max()] ** 2))

    # fricatives and stop bursts: band-passed noise with their own envelopes
    out = voice
    for s in plan.segments:
        if s.kind not in ("fric", "stop"):
            continue
        lo, hi, _ = (FRICATIVES | STOPS)[s.label]
        i1 = int(round(s.t1 * sr))
        m = int(round((s.t1 - s.t0 if s.kind == "fric" else 0.012) * sr))
        noise = sosfilt(_band_sos(lo, hi, sr), rng.standard_normal(m + 256))[256:]
        noise /= np.sqrt(np.mean(noise**2)) + 1e-12
        if s.kind == "fric":
            shape = np.minimum(1.0, np.minimum(np.arange(m), m - np.arange(m)) / (0.02 * sr))
        else:
            shape = np.exp(-np.arange(m) / (0.003 * sr))
        out[i1 - m : i1] += VOICE_RMS * s.amp * shape * noise
    out += floor
    peak = np.abs(out).max()
    if peak > 0.89:  # keep 1 dB of headroom; int16 writing must never clip
        out *= 0.89 / peak

    # ground truth F0 at 10 ms hops: the smooth contour where the voice is audible
    tf = np.arange(n * 100 // sr) / 100.0
    f0_true = np.where(np.interp(tf, env_t, env_v) > 0.1, np.interp(tf, tc, f0_blocks), 0.0)
    return out.astype(np.float32), f0_true.astype(np.float32)


def synthesize_utterance(
    rng: np.random.Generator, sr: int, duration: float = 20.0, speaker: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Plan and render one utterance: (audio float32 [T], true F0 Hz at 10 ms hops)."""
    return render(plan_utterance(rng, duration), rng, sr, speaker)


def make_demo_dataset(
    out_dir: str | Path,
    minutes: float = 3.0,
    sr: int = 40000,
    seed: int = 0,
    n_files: int | None = None,
    speakers: int = 1,
) -> list[Path]:
    """Write `minutes` of 16-bit wav clips per speaker (10–40 s each by default); return their paths.

    One speaker: `out_dir/demo_000.wav`, ...; several: `out_dir/<id>/demo_000.wav`. True F0
    sidecars go to `out_dir/truth/[<id>/]demo_000.f0.npy`. Same seed → same bytes.
    """
    if not 1 <= speakers <= len(SPEAKERS):
        raise ValueError(f"speakers must be in 1..{len(SPEAKERS)}, got {speakers}")
    if minutes <= 0 or sr < 8000:
        raise ValueError(f"need minutes > 0 and sr >= 8000, got minutes={minutes}, sr={sr}")
    out_dir, total = Path(out_dir), minutes * 60.0
    n = n_files or max(1, round(total / 20.0))
    paths = []
    for spk in range(speakers):
        w = 1 + 0.3 * np.random.default_rng([seed, spk]).uniform(-1, 1, n)
        durations = np.round(total * w / w.sum(), 2)
        sub = Path(str(spk)) if speakers > 1 else Path()
        for i, dur in enumerate(durations):
            rng = np.random.default_rng([seed, spk, i])
            audio, f0 = synthesize_utterance(rng, sr, float(dur), spk)
            path = out_dir / sub / f"demo_{i:03d}.wav"
            with atomic_path(path) as tmp:
                sf.write(tmp, audio, sr, subtype="PCM_16")
            save_numpy(out_dir / "truth" / sub / f"demo_{i:03d}.f0.npy", f0)
            paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> None:
    """CLI: `python -m rvc.demo.voice OUT_DIR [--minutes 3] [--seed 0] [--speakers 1]`."""
    p = argparse.ArgumentParser(description="Write the synthetic demo speaker dataset.")
    p.add_argument("out_dir", type=Path)
    p.add_argument("--minutes", type=float, default=3.0, help="minutes of audio per speaker")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--speakers", type=int, default=1)
    p.add_argument("--sr", type=int, default=40000)
    p.add_argument("--n-files", type=int, default=None, help="clips per speaker (~20 s each)")
    p.add_argument("--verbose", action="store_true", help="also print each clip and its length")
    a = p.parse_args(argv)
    paths = make_demo_dataset(a.out_dir, a.minutes, a.sr, a.seed, a.n_files, a.speakers)
    if a.verbose:
        for path in paths:
            print(f"{path}  {sf.info(str(path)).duration:.2f} s")
    print(
        f"wrote {len(paths)} clips to {a.out_dir}, {a.minutes:g} min per speaker "
        f"({a.speakers} speaker{'s' if a.speakers > 1 else ''}); true F0 in {a.out_dir}/truth"
    )


if __name__ == "__main__":
    main()
