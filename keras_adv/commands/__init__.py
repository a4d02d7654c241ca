"""Subcommands of `keras-adv` other than `evaluate`, one module each
(registered in `keras_adv.cli.COMMANDS`). Nothing here imports TensorFlow
until a command runs, so that `keras-adv --help` starts at once."""
