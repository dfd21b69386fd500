"""The retrieval index: build a faiss `.index` from a feature store, read it, retrieve features."""

from rvc.index.build import (
    BUILDERS,
    AutoIndex,
    FaissIndex,
    IndexBuilder,
    IndexInfo,
    KMeansIndex,
    build_index,
    collect_features,
    index_factory_string,
    index_file_name,
    legacy_index_file_name,
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
    "BUILDERS",
    "AutoIndex",
    "FaissIndex",
    "IndexBuilder",
    "IndexFileError",
    "IndexInfo",
    "KMeansIndex",
    "blend",
    "build_index",
    "collect_features",
    "find_index",
    "index_factory_string",
    "index_file_name",
    "index_vectors",
    "legacy_index_file_name",
    "neighbour_weights",
    "read_index",
    "retrieve",
]
