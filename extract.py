"""Prepare a voice dataset: ingest → slice → F0 → content features → audit."""

import sys

import hydra
from omegaconf import DictConfig

import rvc  # noqa: F401  (registers the ${layout:...} config resolvers before composing)


@hydra.main(version_base="1.3", config_path="conf", config_name="extract")
def main(cfg: DictConfig) -> None:
    from rvc.data.audit import print_audit
    from rvc.extract.pipeline import ExtractError, run
    from rvc.utils.console import quiet_third_party

    quiet_third_party()

    try:
        result = run(cfg)
    except ExtractError as e:
        print(f"error: {e}", file=sys.stderr)
        print("(details: add hydra.verbose=rvc.extract to the command)", file=sys.stderr)
        sys.exit(1)
    print_audit(result.audit)
    print(f"store: {result.store.root}")


if __name__ == "__main__":
    main()
