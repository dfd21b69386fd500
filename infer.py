"""Convert recordings into a trained voice: a .pth (ours, RVC WebUI or Applio), its index. (`rvc.apps.infer`; installed: `rvc-infer`)."""

from rvc.apps import infer

if __name__ == "__main__":
    infer()
