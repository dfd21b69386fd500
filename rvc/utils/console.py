"""What the entry points print: one line per event, our own lines and warnings kept, and the
third-party chatter that hides them filtered here, in one place, each by its logger, category
or message (never all warnings).

`train.py`, `extract.py` and `infer.py` call `quiet_third_party()` once Hydra has set up logging;
Hydra's console handler (`conf/hydra/job_logging/console.yaml`) prints through
`ConsoleFormatter`; its log file keeps the timestamped format.
"""

from __future__ import annotations

import logging
import warnings

# third-party loggers whose INFO lines say nothing a user acts on; their warnings still show
QUIET_LOGGERS = (
    "faiss.loader",  # five lines on every start about optional AVX512 builds it did not find
    "matplotlib.font_manager",  # "generated new fontManager" on a first run
)

# Lightning logs its adverts and hardware lines through rank_zero_info, on this logger
LIGHTNING_INFO_LOGGER = "lightning.pytorch.utilities.rank_zero"
DROPPED_PREFIXES = (
    "💡 Tip:",  # litlogger / litmodels advertisements
    # "GPU available: False, used: False", a line per accelerator kind: run.py's start line
    # says which device and precision are used
    "GPU available:",
    "TPU available:",
    "HPU available:",
    # "`Trainer.fit` stopped: `max_epochs=8` reached.": train.py's summary says the epochs
    "`Trainer.fit` stopped:",
)


class ConsoleFormatter(logging.Formatter):
    """INFO as the bare message; warnings and errors with their level and logger."""

    def format(self, record: logging.LogRecord) -> str:
        msg = super().format(record)
        if record.levelno <= logging.INFO:
            return msg
        return f"{record.levelname} [{record.name}] {msg}"


class _DropChatter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(DROPPED_PREFIXES)


def quiet_third_party(lightning: bool = False) -> None:
    """Filter third-party chatter; `lightning=True` (train.py) also makes Lightning's lines
    print once. Idempotent, so a multirun's jobs can each call it."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    rank_zero = logging.getLogger(LIGHTNING_INFO_LOGGER)
    if not any(isinstance(f, _DropChatter) for f in rank_zero.filters):
        rank_zero.addFilter(_DropChatter())
    _filter_warnings()
    if lightning:
        import lightning as _  # noqa: F401  its import adds the handler that _one_handler removes

        _one_lightning_handler()


def _filter_warnings() -> None:
    # torch's deprecations of what Lightning calls (LeafSpec, …): only a Lightning release fixes them
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"lightning(_fabric)?\.")
    # Lightning's hint for epochs shorter than log_every_n_steps: steps are still logged across
    # epochs, and a small dataset (the demo's) cannot do otherwise
    warnings.filterwarnings(
        "ignore", message=r"The number of training batches \(\d+\) is smaller than the logging"
    )
    # webrtcvad (under resemblyzer, the evaluation's speaker encoder) imports pkg_resources,
    # which setuptools >= 80 flags on every start; nothing a user can act on
    warnings.filterwarnings("ignore", message=r"pkg_resources is deprecated", category=UserWarning)


def _one_lightning_handler() -> None:
    """`import lightning` adds its own stderr handler to the `lightning` logger and its records
    also reach the root's (Hydra's console and log file): every line printed twice. Keep the
    root's alone where there is one."""
    if not logging.getLogger().handlers:
        return
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        lg = logging.getLogger(name)
        for h in list(lg.handlers):
            if type(h) is logging.StreamHandler:  # Lightning's console handler, not a file
                lg.removeHandler(h)
        lg.propagate = True
