"""`extract.py`'s work: inputs → slices → F0 → features → audit, resumable and incremental."""

from __future__ import annotations

import concurrent.futures as cf
import functools
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from rvc import registry
from rvc.audio import read as audio_read
from rvc.audio import url as audio_url
from rvc.data import audit as audit_mod
from rvc.data.store import FeatureStore, SourceRecord, StoreLockedError, config_hash
from rvc.errors import RVCError
from rvc.extract import features
from rvc.extract.ingest import SliceParams, ingest_source
from rvc.formats import file_sha256
from rvc.utils.device import extract_devices, inference_dtype

if TYPE_CHECKING:
    from rvc.extract.shards import Shard

log = logging.getLogger(__name__)
STAGES = ("slice", "f0", "features")


class ExtractError(RVCError, RuntimeError):
    """Nothing usable came out, or the request itself is wrong; message is for the user."""


@dataclass
class Source:
    path: Path
    speaker: int = 0
    start: float | None = None
    end: float | None = None


@dataclass
class ExtractResult:
    store: FeatureStore
    audit: dict[str, Any]
    ingested: int  # sources (re)processed in this run
    reused: int  # sources already current
    failures: dict[str, list[tuple[str, str]]]  # stage -> (slice, error)


MAX_SPEAKERS = 109  # spk_embed_dim of every RVC model


def speaker_of(path: Path, root: Path | None = None, max_speakers: int = MAX_SPEAKERS) -> int:
    """Speaker id: the first folder under an input folder named by an integer below
    `max_speakers` (109; a base model's corpus may raise it, `max_speakers=`).

    A file named directly takes its parent folder's number. Other numbers (e.g. a year) are
    ordinary folder names: speaker 0.
    """
    if root is not None and path.is_relative_to(root) and path.parent != root:
        name = path.relative_to(root).parts[0]
    else:
        name = path.parent.name
    return int(name) if name.isdigit() and int(name) < max_speakers else 0


def collect_sources(
    inputs: list[Any],
    downloads: Path,
    failed: dict[str, str] | None = None,
    mine: Callable[[str], bool] | None = None,
    max_speakers: int = MAX_SPEAKERS,
) -> list[Source]:
    """Expand files, folders, globs and URLs (with optional per-input trim) into sources.

    URLs that cannot be downloaded are reported in `failed` (url → reason) and skipped.
    `mine` (a shard's filter) keeps the sources it accepts: URLs asked before their download
    (a shard fetches only its own), files by resolved path.
    """
    failed = {} if failed is None else failed
    sources: dict[Path, Source] = {}
    for item in inputs:
        if isinstance(item, (dict, DictConfig)):
            spec, start, end = item["path"], item.get("start"), item.get("end")
        else:
            spec, start, end = item, None, None
        spec = str(spec)
        if audio_url.is_url(spec):
            if mine is not None and not mine(spec.strip()):
                continue
            try:
                paths = [audio_url.download(spec, downloads)]
            except (audio_url.DownloadError, ImportError) as e:
                failed[spec] = str(e)  # one bad URL does not stop the other inputs
                continue
        else:
            try:
                paths = audio_read.find_media([spec])
            except FileNotFoundError as e:
                raise ExtractError(f"input '{spec}': no such file or folder ({e})") from e
            if not paths:
                raise ExtractError(f"input '{spec}': no audio or video files found in it")
        _check_trim(spec, start, end)
        root = Path(spec).resolve() if Path(spec).is_dir() else None
        for p in paths:
            p = Path(p).resolve()
            if mine is None or audio_url.is_url(spec) or mine(str(p)):
                sources[p] = Source(p, speaker_of(p, root, max_speakers), start, end)
    return list(sources.values())


def _check_trim(spec: str, start: Any, end: Any) -> None:
    try:
        start = None if start is None else float(start)
        end = None if end is None else float(end)
    except (TypeError, ValueError) as e:
        raise ExtractError(f"input '{spec}': start/end must be seconds ({e})") from e
    if (start is not None and start < 0) or (end is not None and end <= (start or 0.0)):
        raise ExtractError(f"input '{spec}': need 0 <= start < end, got start={start} end={end}")


def _ingest_all(store: FeatureStore, sources: list[Source], params: SliceParams, workers: int):
    """Slice every source that is new or changed; return (ingested, reused)."""
    pdict = asdict(params)
    jobs = []
    for src in tqdm(sources, desc="    hash", unit="file", leave=False):
        try:
            content = file_sha256(src.path)
        except OSError as e:
            content = f"unreadable:{e}"
        phash = config_hash({"params": pdict, "start": src.start, "end": src.end})
        old = store.sources.get(str(src.path))  # a new max_speakers may renumber a folder
        if store.source_is_current(str(src.path), content, phash) and old.speaker == src.speaker:
            continue
        jobs.append(
            (str(src.path), src.speaker, content, phash, pdict, str(store.root), src.start, src.end)
        )
    reused = len(sources) - len(jobs)
    bar = tqdm(total=len(jobs), desc="   slice", unit="file")
    if workers > 1 and len(jobs) > 1:
        # threads, not processes: decoding (ffmpeg, libsndfile), soxr and scipy's filters run
        # outside the GIL, and a spawned process pays seconds of imports before its first file
        # (10× the whole slicing of 2 minutes of audio)
        import scipy.signal  # noqa: F401  first imports in one thread, not racing in the workers
        import soxr  # noqa: F401

        pool = cf.ThreadPoolExecutor(workers)
        try:
            futs = [pool.submit(ingest_source, *j) for j in jobs]
            for fut in cf.as_completed(futs):
                store.put_source(*fut.result())
                store.save()  # each file is durable as soon as it is done
                bar.update()
        except BaseException:  # Ctrl-C or a failed save: stop, don't slice the rest first
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
    else:
        for j in jobs:
            store.put_source(*ingest_source(*j))
            store.save()
            bar.update()
    bar.close()
    return len(jobs), reused


def _features_config(embedder: dict[str, Any]) -> dict[str, Any]:
    """The embedder config to extract with and record; says which layer v1 features read."""
    from rvc.io.v1_layer import features_stage_config, store_v1_layer

    try:
        out = features_stage_config(embedder)
    except ValueError as e:
        raise ExtractError(str(e)) from e
    if out.get("version") == "v1" and "v1_layer" in embedder:
        layer = store_v1_layer(out)
        why = "RVC's" if str(embedder["v1_layer"]).lower() == "auto" else "embedder.v1_layer"
        log.info("v1 features: final_proj of HuBERT layer %d (%s)", layer, why)
    return out


def _slice_params(cfg: DictConfig) -> SliceParams:
    data = OmegaConf.to_container(cfg.slicing, resolve=True)
    allowed = {f.name for f in fields(SliceParams)}
    try:
        return SliceParams(
            sample_rate=int(cfg.model.sample_rate),
            **{k: v for k, v in data.items() if k in allowed},
        )
    except (TypeError, ValueError) as e:
        raise ExtractError(f"bad slicing options: {e}") from e


def run(cfg: DictConfig) -> ExtractResult:
    """Run the extraction stages named in `cfg.stages` over `cfg.inputs` into the store (or
    `cfg.shard`'s part of them into the shard's store; `shard=merge` joins the shards')."""
    from rvc.extract import shards  # here: shards.py imports this module

    shard = shards.parse(cfg.get("shard"))
    if shard == shards.MERGE:
        return shards.merge(cfg.paths.exp_dir)
    unknown = set(cfg.stages) - set(STAGES)
    if unknown:
        raise ExtractError(f"unknown stages {sorted(unknown)}; choose from {list(STAGES)}")
    params = _slice_params(cfg)
    try:  # before any work: a wrong device should not cost a slicing run
        devices = extract_devices(cfg.device.accelerator, cfg.device.devices)
        precision = str(cfg.device.get("inference_precision", "fp32"))
        inference_dtype(precision, devices[0])
    except (RuntimeError, ValueError) as e:
        raise ExtractError(str(e)) from e

    store = FeatureStore(shard.root(cfg.paths.exp_dir) if shard else cfg.paths.exp_dir)
    try:
        with store.lock():
            return _run_locked(cfg, store, params, devices, precision, shard)
    except StoreLockedError as e:
        raise ExtractError(str(e)) from e


def _run_locked(
    cfg: DictConfig,
    store: FeatureStore,
    params: SliceParams,
    devices: list[str],
    precision: str,
    shard: Shard | None = None,
) -> ExtractResult:
    store.clean_temp()
    if shard:
        shard.begin(store)
    ingested = reused = 0
    if "slice" in cfg.stages:
        store.params.update(sample_rate=params.sample_rate, slice=asdict(params))
        inputs = list(cfg.inputs) if not isinstance(cfg.inputs, str) else [cfg.inputs]
        failed_urls: dict[str, str] = {}
        seen: set[str] = set()

        def mine(key: str) -> bool:
            seen.add(key)
            return shard.owns(key)

        max_speakers = int(cfg.get("max_speakers") or MAX_SPEAKERS)
        sources = collect_sources(
            inputs, Path(cfg.paths.downloads), failed_urls, mine if shard else None, max_speakers
        )
        if shard:
            shard.saw(store, seen)
        for url, reason in failed_urls.items():
            store.put_source(SourceRecord(url, 0, "", "", status="failed", reason=reason), [])
        # files no longer among the inputs leave the store, with their slices and features
        keep = {str(s.path) for s in sources} | set(failed_urls)
        gone = [p for p in store.sources if p not in keep]
        if gone:
            log.warning(
                "%d files are no longer among the inputs: removed from the store", len(gone)
            )
        for old in gone:
            store.drop_source(old)
        ingested, reused = _ingest_all(store, sources, params, int(cfg.device.num_workers))
        store.save()
    elif store.params.get("slice") and store.params["slice"] != asdict(params):
        # the slices on disk were made with the stored options; those stay the truth
        log.warning("slice stage not run: keeping the store's slicing options, not the given ones")
    if not store.slices and shard:  # few sources, many shards; the merge has the others
        log.warning("shard %s: no usable slices among its %d sources", shard, len(store.sources))
    elif not store.slices:
        failed = [f"  {s.path}: {s.reason}" for s in store.sources.values()]
        raise ExtractError("nothing usable came out of the inputs:\n" + "\n".join(failed))

    failures: dict[str, list[tuple[str, str]]] = {}
    for stage, node in (("f0", "f0"), ("features", "embedder")):
        if stage not in cfg.stages:
            continue
        stage_cfg = OmegaConf.to_container(cfg[node], resolve=True)
        if stage == "features":
            stage_cfg = _features_config(stage_cfg)
        build = functools.partial(registry.build, stage_cfg)  # picklable for workers
        what = stage_cfg.get("name") or str(stage_cfg.get("_target_", "?")).rsplit(".", 1)[-1]
        try:
            failures[stage] = features.run_stage(
                store, stage, stage_cfg, build, devices, int(cfg.device.batch_size),
                precision,
            )  # fmt: skip
        except Exception as e:
            # missing/corrupt weights, a bad custom embedder, a missing extra: the user's to fix;
            # everything finished so far is already saved in the store
            log.debug("stage %s failed", stage, exc_info=True)
            raise ExtractError(f"{stage} ({node}={what}): {type(e).__name__}: {e}") from e
        features.remove_outputs(store, stage, [n for n, _ in failures[stage]])
        for name, err in failures[stage]:
            log.warning("%s: slice %s skipped: %s", stage, name, err)
        if failures[stage] and not store.stages[stage]["done"]:
            first = failures[stage][0][1]
            raise ExtractError(f"{stage} ({node}={what}) failed on every slice, e.g.: {first}")
    store.save()

    audit = audit_mod.build_audit(store)
    audit_mod.save_audit(store, audit)
    if shard:
        shard.finish(store)
    return ExtractResult(store, audit, ingested, reused, failures)
