"""`python -m rvc.evaluate name=myvoice`: the evaluate entry point (`rvc.apps.evaluate`)."""

from rvc.apps import evaluate

if __name__ == "__main__":
    evaluate()
