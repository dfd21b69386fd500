"""Convert held-out slices and test audio of a trained voice; write a report. (`rvc.apps.evaluate`; installed: `rvc-evaluate`)."""

from rvc.apps import evaluate

if __name__ == "__main__":
    evaluate()
