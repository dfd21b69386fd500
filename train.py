"""Train an RVC voice model on a store made by extract.py: a .pth and an .index."""

import sys

import hydra
from omegaconf import DictConfig

import rvc  # noqa: F401  (registers the ${layout:...} config resolvers before composing)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from rvc.train.run import TrainError, run
    from rvc.utils.console import quiet_third_party

    quiet_third_party(lightning=True)

    try:
        result = run(cfg)
    except TrainError as e:
        print(f"error: {e}", file=sys.stderr)
        print("(details: add hydra.verbose=rvc.train to the command)", file=sys.stderr)
        sys.exit(1)
    print(f"voice model: {result.voice_model}")
    print(f"index:       {result.index}")
    print(f"epochs: {result.epochs}, steps: {result.steps}, best val/mel: "
          f"{result.metrics.get('best/val/mel', float('nan')):.4f}")
    return result.metrics.get("best/val/mel")  # what a Hydra sweeper would minimise


if __name__ == "__main__":
    main()
