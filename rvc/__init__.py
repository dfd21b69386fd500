"""rvc-lightning: train and use RVC voice-conversion models.

`from rvc import load_converter, ConvertOptions` gives the conversion API (`rvc.infer`),
imported on first use so `import rvc` stays light.
"""

__version__ = "0.1.0"

_LAZY = {"load_converter", "ConvertOptions", "VoiceConverter", "convert_files"}


def __getattr__(name: str):
    if name in _LAZY:
        import rvc.infer

        return getattr(rvc.infer, name)
    raise AttributeError(f"module 'rvc' has no attribute {name!r}")


def _layout(version: str, sample_rate: int, key: str):
    from omegaconf import ListConfig

    from rvc.models.layouts import layout_value  # plain Python: no torch

    value = layout_value(version, sample_rate, key)
    # a ListConfig, not a list: OmegaConf.resolve (and `--cfg job --resolve`) replace the node
    return ListConfig(value) if isinstance(value, list) else value


def _feature_dim(version: str) -> int:
    from rvc.models.layouts import feature_dim

    return feature_dim(version)


def _format(name: str):
    import rvc.formats

    if not name.isupper() or not hasattr(rvc.formats, name):
        raise KeyError(f"${{format:{name}}}: rvc.formats has no constant {name}")
    return getattr(rvc.formats, name)


def register_config_resolvers() -> None:
    """`${layout:version,sample_rate,key}` (a size of rvc.models.layouts' table),
    `${feature_dim:version}` and `${format:NAME}` (a constant of rvc.formats, e.g. a hub repo)
    for rvc/conf: registered on `import rvc`, before any config of the package is composed (the
    entry points and tests import rvc first)."""
    from omegaconf import OmegaConf

    for name, fn in (("layout", _layout), ("feature_dim", _feature_dim), ("format", _format)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


register_config_resolvers()
