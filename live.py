"""Speak into a trained voice: a microphone, file or stdin streamed through it, block by block. (`rvc.apps.live`; installed: `rvc-live`)."""

from rvc.apps import live

if __name__ == "__main__":
    live()
