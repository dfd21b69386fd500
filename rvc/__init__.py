"""rvc-lightning: train and use RVC voice-conversion models."""

__version__ = "0.1.0"
