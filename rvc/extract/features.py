"""The model stages of extraction: F0 and content features for every slice in the store.

Work is batched (many slices per forward pass) and, with several devices, sharded: each device
gets its own worker process and model, and writes its own files. The parent records results in
the manifest, so a crash loses at most the batches in flight.

The features stage also embeds 3 s of digital silence once (`<store>/mute/features.npy`): RVC
trains on a few such "mute" slices so the voice learns silence, and their features must come
from the same embedder as the slices'.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing as mp
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from tqdm.auto import tqdm

from rvc.data.store import FeatureStore, SliceRecord
from rvc.formats import ANALYSIS_RATE, MUTE_SECONDS
from rvc.utils import atomic
from rvc.utils.device import inference_dtype

log = logging.getLogger(__name__)

# stage name -> (builds the model on a device, computes one batch and writes its files)
Builder = Callable[[str], Any]


def _ready(build: Builder, device: str, precision: str) -> Any:
    """The stage's model on `device`, its networks cast once to `precision` (no autocast)."""
    model = build(device)
    cast = getattr(model, "cast", None)  # estimators and embedders; a test double may lack it
    return cast(inference_dtype(precision, device)) if cast is not None else model


def _batches(recs: list[SliceRecord], size: int) -> Iterator[list[SliceRecord]]:
    # similar lengths together: less padding for the embedders
    recs = sorted(recs, key=lambda r: r.n_samples_16k)
    for i in range(0, len(recs), size):
        yield recs[i : i + size]


def _load16k(store: FeatureStore, rec: SliceRecord) -> np.ndarray:
    audio, _ = sf.read(store.path("sliced16k", rec), dtype="float32")
    return audio


def _read_ahead(
    store: FeatureStore, batches: Iterator[list[SliceRecord]]
) -> Iterator[tuple[list[SliceRecord], cf.Future]]:
    """Each batch with its audio, read by a background thread while the previous batch is in
    the model: decoding overlaps model work (libsndfile releases the GIL)."""
    with cf.ThreadPoolExecutor(1, thread_name_prefix="read-ahead") as pool:
        previous = None
        for batch in batches:
            future = pool.submit(lambda b=batch: [_load16k(store, r) for r in b])
            if previous is not None:
                yield previous
            previous = (batch, future)
        if previous is not None:
            yield previous


def f0_batch(
    model: Any, store: FeatureStore, recs: list[SliceRecord], audios: list[np.ndarray] | None = None
) -> list[tuple[str, str]]:
    """Compute and write F0 (Hz + coarse) for a batch; return (name, error) for failures."""
    from rvc.f0.coarse import f0_to_coarse

    failures = []
    outs = model.compute_batch(audios or [_load16k(store, r) for r in recs])
    for rec, f0 in zip(recs, outs, strict=True):
        if not np.isfinite(f0).all():
            failures.append((rec.name, "F0 estimator returned NaN/Inf"))
            continue
        atomic.save_numpy(store.path("f0", rec), f0.astype(np.float32))
        atomic.save_numpy(store.path("f0c", rec), f0_to_coarse(f0).astype(np.int16))
    return failures


def feature_batch(
    model: Any, store: FeatureStore, recs: list[SliceRecord], audios: list[np.ndarray] | None = None
) -> list[tuple[str, str]]:
    """Embed a batch of slices (the embedder pads and trims), write [frames, dim] float16 each."""
    feats = model.embed_batch(audios or [_load16k(store, r) for r in recs])
    failures = []
    for rec, f in zip(recs, feats, strict=True):
        if not np.isfinite(f).all():
            failures.append((rec.name, f"embedder '{model.name}' returned NaN/Inf"))
            continue
        atomic.save_numpy(store.path("features", rec), f.astype(np.float16))
    return failures


BATCH_FNS = {"f0": f0_batch, "features": feature_batch}


def write_mute(model: Any, store: FeatureStore) -> None:
    """Embed 3 s of silence at 16 kHz and save it as [frames, dim] float16 (not recorded)."""
    feats = model.embed(np.zeros(int(MUTE_SECONDS * ANALYSIS_RATE), dtype=np.float32))  # [F, dim]
    if not np.isfinite(feats).all():
        raise ValueError(f"embedder '{model.name}' returned NaN/Inf for silence")
    atomic.save_numpy(store.mute_path(), feats.astype(np.float16))


def _mute_todo(store: FeatureStore, stage: str) -> bool:
    # no "mute" key after stage_todo reset the record for a new config: redone with the stage
    st = store.stages[stage]
    return stage == "features" and not (st.get("mute") and store.mute_path().exists())


def _mark_mute(store: FeatureStore) -> None:
    store.stages["features"]["mute"] = True
    store.save()


def _guarded_batch(
    stage: str,
    model: Any,
    store: FeatureStore,
    recs: list[SliceRecord],
    audios: cf.Future | None = None,
) -> list[tuple[str, str]]:
    """One batch (its audio read ahead, or read here); if it raises, each slice alone, so one
    bad slice fails only itself."""
    try:
        loaded = audios.result() if audios is not None else None
        return BATCH_FNS[stage](model, store, recs, loaded)
    except Exception as e:
        if len(recs) == 1:
            return [(recs[0].name, f"{type(e).__name__}: {e}")]
        log.debug("%s batch failed, retrying slice by slice", stage, exc_info=True)
        return [f for r in recs for f in _guarded_batch(stage, model, store, [r])]


_MODEL: dict[str, Any] = {}  # per worker process: the model, built on first use


def _worker_batch(
    stage: str, build: Builder, precision: str, device: str, root: str, recs: list[SliceRecord]
) -> tuple[list[SliceRecord], list[tuple[str, str]]]:
    """One batch on one device's worker process; the model stays loaded between batches."""
    if device not in _MODEL:
        _MODEL[device] = _ready(build, device, precision)
    store = FeatureStore(root, read=False)  # paths only: the parent owns the manifest
    return recs, _guarded_batch(stage, _MODEL[device], store, recs)


def _worker_mute(build: Builder, precision: str, device: str, root: str) -> None:
    """The silence features on a worker, reusing the model it already holds."""
    if device not in _MODEL:
        _MODEL[device] = _ready(build, device, precision)
    write_mute(_MODEL[device], FeatureStore(root, read=False))


def run_stage(
    store: FeatureStore,
    stage: str,
    config: dict[str, Any],
    build: Builder,
    devices: list[str],
    batch_size: int,
    precision: str = "fp32",
) -> list[tuple[str, str]]:
    """Bring `stage` up to date for every slice; return (slice, error) failures.

    `precision` (`device.inference_precision`): the models' networks are cast to bf16/fp16 once
    (`cast`); RMVPE's mel, CREPE's and FCPE's decoding and the outputs stay fp32. Like
    `batch_size`, it is not part of the stage's hash: switching it does not redo finished slices.
    """
    todo = store.stage_todo(stage, config)
    mute = _mute_todo(store, stage)
    first = devices[0] if devices else "cpu"
    inference_dtype(precision, first)  # a bad value fails before any work
    if not todo:
        log.info("%s: all %d slices up to date", stage, len(store.slices))
        store.save()
        if mute:  # e.g. a store from before mute features, or the file was deleted
            write_mute(_ready(build, first, precision), store)
            _mark_mute(store)
        return []
    failures: list[tuple[str, str]] = []
    bar = tqdm(total=len(todo), desc=f"{stage:>8}", unit="slice")

    def record(batch: list[SliceRecord], bad: list[tuple[str, str]]) -> None:
        failed = {n for n, _ in bad}
        for r in batch:
            if r.name not in failed:
                store.mark_done(stage, r)
        failures.extend(bad)
        store.save()  # each batch is durable
        bar.update(len(batch))

    batches = _batches(todo, batch_size)
    if len(devices) <= 1:
        model = _ready(build, first, precision)
        for b, audios in _read_ahead(store, batches):
            record(b, _guarded_batch(stage, model, store, b, audios))
        if mute:
            write_mute(model, store)
            _mark_mute(store)
    else:
        # one single-process pool per device; each takes the next batch when it is free
        ctx = mp.get_context("spawn")  # CUDA cannot be forked
        pools = [cf.ProcessPoolExecutor(1, mp_context=ctx) for _ in devices]
        pending: dict[cf.Future, int] = {}

        def feed(i: int) -> None:
            b = next(batches, None)
            if b is not None:
                args = (stage, build, precision, devices[i], str(store.root), b)
                pending[pools[i].submit(_worker_batch, *args)] = i

        try:
            for i in range(len(devices)):
                feed(i)
            while pending:
                finished, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                for fut in finished:
                    i = pending.pop(fut)
                    record(*fut.result())
                    feed(i)
            if mute:  # on the first device's worker: its model is loaded already
                pools[0].submit(_worker_mute, build, precision, first, str(store.root)).result()
                _mark_mute(store)
        finally:
            for pool in pools:
                pool.shutdown(cancel_futures=True)
    bar.close()
    return failures


def remove_outputs(store: FeatureStore, stage: str, names: list[str]) -> None:
    """Delete a stage's files for slices that failed (no half-trusted outputs)."""
    from rvc.data.store import STAGE_DIRS

    for n in names:
        rec = store.slices.get(n)
        if rec is not None:
            for kind in STAGE_DIRS[stage]:
                Path(store.path(kind, rec)).unlink(missing_ok=True)
