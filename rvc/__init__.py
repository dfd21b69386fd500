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
