"""The one progress mechanism of keras_adv: what a long function or a
command is doing, on stderr (stdout keeps only results). On the ground
floor, so every layer and the command line before TensorFlow use it.

`Progress` writes two kinds of line, with one heartbeat:

- stage lines (`progress("loading the model")`), written at once, after
  a `prefix` (`keras-adv certify: loading the model (3 s)`);
- counts of examples done (`step`; `total` the number expected, None for
  a stream of unknown length): a `keras.utils.Progbar` on a terminal,
  elsewhere (CI logs, `nohup`) a plain line at most every `LINE_SECONDS`
  seconds and at the end.

Open (`with Progress(...) as progress:`), a heartbeat thread names the
work under way (`doing`) whenever no `Progress` has written for
`QUIET_SECONDS` (a counter's; a stage's waits `STAGE_QUIET_SECONDS`, so
that the counter's line goes first), or refreshes the bar's clock on a
terminal. The evaluation driver counts its examples with it; the
`keras-adv` commands write their stages with it (`cli.py` its `loading
TensorFlow` line) and pass it as `progress` (a callable) to
`keras_adv.audit`. `show` resolves every long function's `progress`
argument (None: on a terminal for long runs).
Nothing here imports TensorFlow; Keras only for a terminal's bar.
"""

import contextlib
import sys
import threading
import time

LONG = 200  # evaluation's work units (examples x eps) that make a long run


def show(progress, work=None, *, long=LONG):
    """Resolves a `progress` argument: True or False as given; None shows
    progress when stderr is a terminal and the run is long, `work` (in the
    caller's units; None: of unknown length) at least `long`, and no other
    run is open (a function called inside another's `with Progress(...)`
    leaves the reporting to it).

    Raises:
        TypeError: `progress` neither None nor a bool.

    Example:

    >>> show(None, 10, long=200)  # a short run: never on its own
    False
    """
    if progress is None:  # silent inside another run, which reports
        return (not Progress.depth and sys.stderr.isatty()
                and (work is None or work >= long))
    numpy_bool = type(progress).__module__ == "numpy" and getattr(
        progress, "dtype", None) == "bool"
    if not (isinstance(progress, bool) or numpy_bool):
        raise TypeError("progress must be True, False or None. Received: "
                        f"progress={progress!r:.60}")
    return bool(progress)


class Progress:
    """Progress lines on stderr: stages, counts of examples, a heartbeat.

    Args:
        enabled: write anything at all (False: every call is silent).
        total: the number of examples expected (a bar's target), or None.
        counts: count examples (`step`): a bar on a terminal, plain lines
            elsewhere; False writes stage lines only.
        prefix: the text before every line (`"keras-adv certify"`), or
            None.
        start: the `time.perf_counter()` the seconds count from (default:
            now).
        label: a count's line, `{}` standing for `done/total`
            (`"brewed {} steps"`).

    Example:

    >>> with Progress(False, prefix="keras-adv certify") as progress:
    ...     progress("loading the model")
    """

    LINE_SECONDS = 5.0
    QUIET_SECONDS = 10.0  # before a counter's heartbeat line
    STAGE_QUIET_SECONDS = 11.0  # before a stage's (the counter goes first)
    BEAT_SECONDS = 1.0  # how often the heartbeat looks
    last_line = 0.0  # time.perf_counter() of the latest line of any Progress
    depth = 0  # open `with Progress(...)` blocks: a run inside one is silent
    _write_lock = threading.Lock()

    def __init__(self, enabled=True, *, total=None, counts=False,
                 prefix=None, start=None, label="evaluated {} examples"):
        self.enabled, self.total, self.counts = bool(enabled), total, counts
        self.label = label
        self.prefix = f"{prefix}: " if prefix else ""
        self.start = time.perf_counter() if start is None else start
        self.last, self.done, self.activity, self.bar = self.start, 0, None, None
        self.lines = self.enabled and not (counts and sys.stderr.isatty())
        self._lock, self._stop = threading.Lock(), threading.Event()
        if self.enabled and not self.lines:
            import keras

            with contextlib.redirect_stdout(sys.stderr):
                self.bar = keras.utils.Progbar(total,
                                               stateful_metrics=["robust"])

    @classmethod
    def resolve(cls, progress, work=None, *, long=LONG, **kwargs):
        """The `Progress` of a long function's `progress` argument:
        enabled as `show(progress, work, long=long)` resolves it, the other
        arguments (`total`, `counts`, `prefix`, `label`) as given.

        Raises:
            TypeError: `progress` neither None nor a bool.

        Example:

        >>> counter = Progress.resolve(None, 10, long=200, total=10,
        ...                            counts=True, prefix="strip_entropy")
        >>> counter.enabled  # a short run: never on its own
        False
        """
        return cls(show(progress, work, long=long), **kwargs)

    def __enter__(self):
        Progress.depth += 1
        if self.enabled:
            Progress.last_line = max(Progress.last_line, time.perf_counter())
            threading.Thread(target=self._beat, daemon=True).start()
        return self

    def __exit__(self, *exc):
        Progress.depth -= 1
        self.close()
        return False

    def __call__(self, text):
        """Writes the stage line `text` now; the heartbeat repeats it."""
        with self._lock:
            self.activity = text
            if self.lines:
                self._write(text, time.perf_counter())

    def doing(self, text):
        """Names the work under way (`"apgd-t at eps 0.3 on examples
        1-500"`), for the heartbeat line."""
        self.activity = text

    def close(self):
        """Stops the heartbeat."""
        self._stop.set()

    def step(self, examples, robust=None):
        """Counts `examples` more examples done; `robust` is the running
        worst-case robust accuracy (shown beside the count)."""
        with self._lock:
            self.done += examples
            if self.bar is not None:
                self._update_bar([] if robust is None else
                                 [("robust", robust)])
            elif self.lines:
                self._line(robust)

    def _update_bar(self, values):
        with contextlib.redirect_stdout(sys.stderr):
            self.bar.update(self.done, values)
        self.last = Progress.last_line = time.perf_counter()

    def _beat(self):
        quiet = self.QUIET_SECONDS if self.counts else self.STAGE_QUIET_SECONDS
        while not self._stop.wait(self.BEAT_SECONDS):
            with self._lock, Progress._write_lock:
                now = time.perf_counter()
                finished = self.total is not None and self.done >= self.total
                if (now - max(self.last, Progress.last_line) < quiet
                        or finished or self._stop.is_set()):
                    continue
                if self.bar is not None:
                    self._update_bar([])
                elif self.counts:
                    self._write(self._count() + (
                        f"; now {self.activity}" if self.activity else ""),
                        now)
                elif self.activity is not None:
                    self._write(f"{self.activity}, still running", now)

    def _count(self):
        of = "" if self.total is None else f"/{self.total}"
        return self.label.format(f"{self.done}{of}")

    def _line(self, robust):
        now = time.perf_counter()
        end = self.total is not None and self.done >= self.total
        if now - self.last < self.LINE_SECONDS and not end:
            return
        rob = "" if robust is None else f", robust {robust:.4f}"
        self._write(f"{self._count()}{rob}", now)

    def _write(self, text, now):
        self.last = Progress.last_line = now
        sys.stderr.write(f"{self.prefix}{text} ({now - self.start:.0f} s)\n")
        sys.stderr.flush()
