"""The GAN itself: its objects (:mod:`.gan`), the training step (:mod:`.step`), losses, penalties,
augmentation, the moving average of G, GON and the learning-rate schedule."""
