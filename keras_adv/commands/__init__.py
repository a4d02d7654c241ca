"""The subcommands of `keras-adv`, one module each (`evaluate`, `certify`,
`poison-scan`; registered in `keras_adv.cli.COMMANDS`), and `common`, what
they share. Nothing here imports TensorFlow until a command runs, so that
`keras-adv --help` starts at once and a bad flag fails in about a second."""
