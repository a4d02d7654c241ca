"""The progress contract of a poisoning function, checked once: silent with
`progress=False`, one end line with `progress=True`, the same result."""


def one_line_each_way(call, capsys, start):
    """Runs `call(progress=False)` then `call(progress=True)`; asserts the
    first writes nothing and the second one line beginning with `start`;
    returns both results."""
    quiet = call(progress=False)
    assert capsys.readouterr().err == ""
    shown = call(progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(start), lines
    return quiet, shown
