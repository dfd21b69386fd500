"""docs/formats.md, the in-repository formats reference: every `docs/formats.md §N` cited exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "formats.md"
CITATION = re.compile(r"docs/formats\.md §(\d+)(?:[–-](\d+))?")


def test_every_cited_section_exists():
    sections = {int(n) for n in re.findall(r"^## §(\d+) ", DOC.read_text(), flags=re.M)}
    assert sections == set(range(1, len(sections) + 1)) and len(sections) >= 7
    cited = {}
    for path in [*ROOT.glob("rvc/**/*.py"), *ROOT.glob("rvc/conf/**/*.yaml"),
                 *ROOT.glob("docs/*.md"), *ROOT.glob("tests/**/*.py"), ROOT / "README.md"]:  # fmt: skip
        for m in CITATION.finditer(path.read_text(encoding="utf-8")):
            for n in filter(None, m.groups()):
                cited.setdefault(int(n), []).append(path.relative_to(ROOT).as_posix())
    assert cited, "nothing cites docs/formats.md"
    missing = {n: where for n, where in cited.items() if n not in sections}
    assert not missing, f"cited sections missing from docs/formats.md: {missing}"
