"""Train an RVC voice model on a store made by extract: a .pth and an .index. (`rvc.apps.train`; installed: `rvc-train`)."""

from rvc.apps import train

if __name__ == "__main__":
    train()
