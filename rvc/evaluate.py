"""`python -m rvc.evaluate name=myvoice`: convert held-out slices and test audio, write a report."""

import sys

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    from rvc.eval.run import EvalError, run

    try:
        report, html = run(cfg)
    except EvalError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    for k, v in report.summary().items():
        print(f"{k:>15}: {v:.4f}")
    print(f"report: {html}")


if __name__ == "__main__":
    main()
