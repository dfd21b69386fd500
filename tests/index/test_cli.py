"""`rvc-index build` / `info` on a tiny feature store and on broken inputs."""

from __future__ import annotations

from rvc.index import read_index
from rvc.index.cli import main
from tests.index.test_build import DIM, make_store


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    assert err.startswith("rvc-index: error: ")
    return err


def test_build_writes_store_name_index(tmp_path, capsys):
    make_store(tmp_path / "alice")
    assert main(["build", str(tmp_path / "alice")]) == 0
    out = capsys.readouterr().out
    path = tmp_path / "alice" / "alice.index"
    assert out.count("\n") == 1 and str(path) in out and "300 vectors" in out and "(auto)" in out
    index = read_index(path, dim=DIM)
    assert index.ntotal == 300


def test_build_with_kind_name_and_out(tmp_path, capsys):
    store = tmp_path / "exp"
    make_store(store)
    assert main(["build", str(store), "--kind", "kmeans", "--name", "bob"]) == 0
    assert (store / "bob.index").is_file() and "(kmeans)" in capsys.readouterr().out
    out = tmp_path / "models" / "x.index"
    assert main(["build", str(store), "--kind", "faiss", "--out", str(out)]) == 0
    assert read_index(out).ntotal == 300 and not (store / "exp.index").exists()


def test_info(tmp_path, capsys):
    make_store(tmp_path / "exp")
    main(["build", str(tmp_path / "exp")])
    capsys.readouterr()
    assert main(["info", str(tmp_path / "exp" / "exp.index")]) == 0
    rows = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    assert (rows["dim"], rows["ntotal"], rows["nlist"], rows["nprobe"]) == ("32", "300", "7", "1")
    assert rows["type"] == "IndexIVFFlat"


def test_errors_are_one_line(tmp_path, capsys):
    assert main(["build", str(tmp_path)]) == 1
    assert "not a feature store" in _error_line(capsys)
    store = make_store(tmp_path / "exp")
    store.stages["features"]["done"] = {}
    store.save()
    assert main(["build", str(tmp_path / "exp")]) == 1
    assert "no content features" in _error_line(capsys)
    bad = tmp_path / "broken.index"
    bad.write_text("not an index")
    assert main(["info", str(bad)]) == 1
    assert "broken.index" in _error_line(capsys)
    assert main(["info", str(tmp_path / "missing.index")]) == 1
    assert "missing.index: no such index file" in _error_line(capsys)
