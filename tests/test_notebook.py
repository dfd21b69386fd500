"""notebooks/quickstart.ipynb runs headless on the demo voice with a tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quickstart_notebook_runs(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(ROOT / "notebooks" / "quickstart.ipynb", as_version=4)
    settings = nb.cells[1]
    assert settings.source.startswith("# Settings")
    # smaller and shorter than the demo, in a scratch folder; everything else as shipped
    settings.source = settings.source.replace("EPOCHS = 8", "EPOCHS = 2").replace(
        "DEMO_MINUTES = 3.0", "DEMO_MINUTES = 0.5").replace('ROOT = "."', f'ROOT = "{tmp_path}"')  # fmt: skip
    nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT)}}).execute()  # fmt: skip
    outputs = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
    )
    assert "report:" in outputs and (tmp_path / "experiments" / "demo" / "demo.pth").exists()
    assert (tmp_path / "experiments" / "demo" / "eval" / "report.html").exists()
