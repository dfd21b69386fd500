"""The retrieval index: build a faiss `.index` from a feature store, read it, retrieve features."""

from rvc.index.build import (
    AutoIndex,
    FaissIndex,
    IndexBuilder,
    IndexInfo,
    IndexKindError,
    KMeansIndex,
    build_index,
    collect_features,
    index_factory_string,
    index_file_name,
    make_builder,
)
from rvc.index.search import (
    IndexFileError,
    blend,
    find_index,
    index_vectors,
    neighbour_weights,
    read_index,
    retrieve,
)

__all__ = [
    "AutoIndex",
    "FaissIndex",
    "IndexBuilder",
    "IndexFileError",
    "IndexInfo",
    "IndexKindError",
    "KMeansIndex",
    "blend",
    "build_index",
    "collect_features",
    "find_index",
    "index_factory_string",
    "index_file_name",
    "index_vectors",
    "make_builder",
    "neighbour_weights",
    "read_index",
    "retrieve",
]
