"""Convert recordings into a trained voice: a .pth (ours, RVC WebUI or Applio) and its index."""

import sys

import hydra
from omegaconf import DictConfig

import rvc  # noqa: F401  (registers the ${layout:...} config resolvers before composing)


@hydra.main(version_base="1.3", config_path="conf", config_name="infer")
def main(cfg: DictConfig) -> None:
    from rvc.infer.run import InferError, run, summary
    from rvc.utils.console import quiet_third_party

    quiet_third_party()

    try:
        result = run(cfg)
    except InferError as e:
        print(f"error: {e}", file=sys.stderr)
        print("(details: add hydra.verbose=rvc.infer to the command)", file=sys.stderr)
        sys.exit(1)
    print(summary(result))
    if result.failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
