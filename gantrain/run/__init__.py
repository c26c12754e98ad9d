"""Running a training run: :func:`gantrain.run.train.train` checks the config, builds the GAN, opens
the run directory (:mod:`.directory`, :mod:`.checkpoints`) and loops with its periodic duties
(:mod:`.duties`); signals (:mod:`.interrupts`), tf.distribute strategies and the recorded
environment live here too."""
