"""Index kinds come from the registry: a new kind is a module and a YAML, nothing else."""

from __future__ import annotations

import numpy as np
import pytest

from rvc import registry
from rvc.index import (
    AutoIndex,
    FaissIndex,
    IndexKindError,
    KMeansIndex,
    index_vectors,
    make_builder,
    read_index,
    retrieve,
)
from rvc.index.cli import main
from tests.index.test_build import DIM, make_store

TOY_MODULE = '''
import numpy as np

from rvc.index import IndexBuilder


class EveryOtherFrame(IndexBuilder):
    """Index every `step`-th frame of the shuffled features."""

    def __init__(self, step: int = 2, seed: int = 0):
        super().__init__(seed=seed)
        self.step = step

    def reduce(self, x: np.ndarray) -> np.ndarray:
        return x[:: self.step]
'''

TOY_YAML = "_target_: toy_index_kind.EveryOtherFrame\nstep: 2\n"


@pytest.fixture
def conf_dir(tmp_path, monkeypatch):
    """An empty project config folder on the registry's search path (and its folder on sys.path)."""
    monkeypatch.setattr(registry, "_EXTRA", [])  # the test's paths go when it ends
    monkeypatch.syspath_prepend(str(tmp_path))
    conf = tmp_path / "conf"
    (conf / "index").mkdir(parents=True)
    registry.add_search_path(conf)
    return conf


def test_shipped_kinds_build_their_classes():
    classes = {"auto": AutoIndex, "faiss": FaissIndex, "kmeans": KMeansIndex}
    assert registry.names("index") == sorted(classes)
    for kind, cls in classes.items():
        builder = make_builder(kind)
        assert type(builder) is cls and builder.kind == kind
    assert make_builder("kmeans", kmeans_centres=5).kmeans_centres == 5


def test_toy_kind_is_two_files(tmp_path, conf_dir, capsys):
    (tmp_path / "toy_index_kind.py").write_text(TOY_MODULE)
    (conf_dir / "index" / "toy.yaml").write_text(TOY_YAML)
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.*"))
    assert written == ["conf/index/toy.yaml", "toy_index_kind.py"]
    assert "toy" in registry.names("index")

    store = tmp_path / "alice"
    make_store(store)  # 300 frames
    assert main(["build", str(store), "--kind", "toy"]) == 0
    assert "(toy)" in capsys.readouterr().out
    index = read_index(store / "alice.index", dim=DIM)
    assert index.ntotal == 150  # every other frame

    # conversion's search retrieves from it: an indexed frame comes back as itself
    vectors = index_vectors(index)
    query = np.concatenate([vectors[:5], np.zeros((3, DIM), np.float32)])
    got = retrieve(index, query, k=4)
    assert got.shape == query.shape and np.isfinite(got).all()
    np.testing.assert_allclose(got[:5], vectors[:5], rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "yaml,match",
    [
        ("step: 2\n", "no _target_"),
        ("_target_: collections.OrderedDict\n", "is not an rvc.index.IndexBuilder"),
        ("_target_: no_such_module_xyz.Builder\n", "cannot build no_such_module_xyz.Builder"),
    ],
)
def test_broken_kind_fails_when_built_naming_its_yaml(tmp_path, conf_dir, capsys, yaml, match):
    (conf_dir / "index" / "broken.yaml").write_text(yaml)
    with pytest.raises(IndexKindError, match=match) as e:
        make_builder("broken")
    assert str(conf_dir / "index" / "broken.yaml") in str(e.value)
    # the CLI refuses it in one line, before it looks at (or locks) the store
    assert main(["build", str(tmp_path / "nowhere"), "--kind", "broken"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "broken.yaml" in err and "not a feature store" not in err


def test_unknown_kind_lists_the_known_ones(tmp_path, capsys):
    with pytest.raises(registry.RegistryError, match="known: auto, faiss, kmeans"):
        make_builder("nope")
    with pytest.raises(SystemExit) as e:
        main(["build", str(tmp_path), "--kind", "nope"])
    assert e.value.code == 2 and "'auto', 'faiss', 'kmeans'" in capsys.readouterr().err
