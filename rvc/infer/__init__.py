"""Voice conversion: `load_converter(voice.pth).convert(audio16k, ConvertOptions(...))`."""

from rvc.infer.converter import ConversionError, VoiceConverter
from rvc.infer.load import ConverterLoadError, load_converter
from rvc.infer.options import ConvertOptions
from rvc.infer.run import InferError, InferResult, convert_files

__all__ = [
    "ConversionError", "ConvertOptions", "ConverterLoadError", "InferError", "InferResult",
    "VoiceConverter", "convert_files", "load_converter",
]  # fmt: skip
