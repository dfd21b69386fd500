"""Training: the one GAN step, the LightningModule, callbacks and `run(cfg)` for train.py."""
