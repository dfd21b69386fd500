"""`python -m rvc.eval.compare runA/eval/report.json runB/eval/report.json ...`: one table."""

from __future__ import annotations

import argparse

from rvc.eval.report import compare


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("reports", nargs="+", help="report.json files (or globs expanded by the shell)")
    print(compare(p.parse_args(argv).reports))


if __name__ == "__main__":
    main()
