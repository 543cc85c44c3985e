"""Training progress on stderr: a one-line bar on a terminal, plain lines anywhere else.

Both modes start with the compile phase (the first chunk is XLA compilation plus an iteration or
two; the first ``update`` that carries a speed ends it), then show the budget done, throughput,
the recent episode return and the first one or two losses the algorithm reports (metrics named
``loss`` or ``*_loss``), each averaged over the last ``WINDOW`` finite values.

- ``"bar"``: a rich live line whose refresh thread ticks the compile timer; it fits the terminal
  by shortening or dropping the least useful fields first (``Progress.render``).
- ``"lines"`` (a pipe, nohup, a CI log): one line when compilation starts, one with the compile
  time, then a status line soon after and every ``interval`` seconds, and a final one; plain ASCII
  separators, no escape codes, flushed, under ``LINE_WIDTH`` characters.
"""
from __future__ import annotations

import math
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TextIO

from rich.cells import cell_len
from rich.console import Console
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

MODES = ("bar", "lines")
WINDOW = 20  # finite values (rows are per iteration and seed) averaged for return and losses
LINE_WIDTH = 119
BAR_MIN, BAR_MAX = 6, 40
COMPILING = "compiling the training step"


def short(x: float) -> str:
    """225280 -> '225k', 1.5e6 -> '1.5M': three significant digits and a k/M/G suffix."""
    for suffix in ("", "k", "M", "G", "T"):
        if abs(x) < 999.5:
            return f"{x:.3g}{suffix}"
        x /= 1000
    return f"{x:.3g}P"


def clock_time(seconds: float) -> str:
    """'0:02', '12:05', '1:02:03'."""
    m, s = divmod(int(max(seconds, 0)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


def _fit(parts: dict[str, tuple[str, ...]], width: int, sep: int, plan: list[str]
         ) -> dict[str, str]:
    """The parts (name: its forms, longest first; none: not shown) that fit in ``width`` columns
    with ``sep`` between them. The ``plan`` says in which order parts give way until the line
    fits: "name" takes the part's next shorter form, "-name" drops it."""
    forms = {k: [f for f in v if f] for k, v in parts.items()}
    forms = {k: v for k, v in forms.items() if v}
    for step in plan:
        if sum(cell_len(v[0]) for v in forms.values()) + sep * (len(forms) - 1) <= width:
            break
        name = step.lstrip("-")
        if step.startswith("-"):
            forms.pop(name, None)
        elif len(forms.get(name, ())) > 1:
            forms[name].pop(0)
    return {k: v[0] for k, v in forms.items()}


class Progress:
    """``Progress(total_steps, mode, description, unit)``; ``update(steps, per_second, rows)``
    after each chunk (``per_second=None``: only the position, e.g. where a resume starts);
    ``close()`` at the end. ``mode`` is "bar", "lines" or None (off); True/False mean "bar"/off.
    ``console``, ``file`` and ``clock`` are for tests."""

    def __init__(self, total_steps: int, mode: str | bool | None, description: str,
                 unit: str = "steps", *, console: Console | None = None,
                 file: TextIO | None = None, interval: float = 10.0, first_interval: float = 2.0,
                 clock: Callable[[], float] = time.monotonic):
        mode = {True: "bar", False: None}[mode] if isinstance(mode, bool) else mode
        if mode is not None and mode not in MODES:
            raise ValueError(f"progress mode must be one of {MODES} or None, got {mode!r}")
        self.mode, self.total, self.description, self.unit = mode, total_steps, description, unit
        self.interval, self.first_interval = interval, first_interval
        self._clock = clock
        self._file = file if file is not None else sys.stderr
        self._started = clock()
        self._compiled_at: float | None = None  # when the first chunk returned
        self._origin = (0.0, 0)  # (time, steps) from which the rate is measured: after compiling
        self._updated_at = self._started
        self._steps = 0
        self._per_second: float | None = None
        self._returns: deque[float] = deque(maxlen=WINDOW)
        self._losses: dict[str, deque[float]] | None = None  # chosen from the first row
        self._shown: dict[str, float | None] = {"return": None}  # return and losses, averaged
        self._lock = threading.Lock()  # update() against the bar's refresh thread
        self._next_line_at = math.inf
        self._line_steps: int | None = None  # where the last status line was
        self._live: Live | None = None
        if mode == "bar":
            self._spinner = Spinner("dots")
            # Prints while the bar is live go above it: stderr's, and stdout's when stdout is
            # the terminal too (not when it is redirected to a file).
            stdout_tty = console is None and sys.stdout is not None and sys.stdout.isatty()
            self._live = Live(_Line(self), console=console or Console(stderr=True),
                              refresh_per_second=4, redirect_stdout=stdout_tty,
                              redirect_stderr=console is None)
            self._live.start()
        elif mode == "lines":
            self._print(f"[{self._short_description(40)}] {COMPILING}...")

    # -- state ------------------------------------------------------------------------------------
    def update(self, steps: int, per_second: float | None, rows: Iterable[Mapping] | None) -> None:
        now = self._clock()
        compiled = False
        with self._lock:
            self._steps, self._updated_at = steps, now
            for row in rows or ():
                if self._losses is None:
                    keys = [k for k in row if k == "loss" or k.endswith("_loss")][:2]
                    self._losses = {k: deque(maxlen=WINDOW) for k in keys}
                if _finite(row.get("episode_return")):
                    self._returns.append(row["episode_return"])
                for k, values in self._losses.items():
                    if _finite(row.get(k)):
                        values.append(row[k])
            self._shown = {"return": _mean(self._returns),
                           **{k: _mean(v) for k, v in (self._losses or {}).items()}}
            if per_second is None:
                self._origin = (now, steps)
            elif self._compiled_at is None:  # the first chunk: its speed includes compilation
                self._compiled_at, self._origin, compiled = now, (now, steps), True
            else:
                self._per_second = per_second
        if compiled:
            message = f"compiled the training step in {now - self._started:.1f}s"
            if self.mode == "lines":
                self._print(f"[{self._short_description(40)}] {message}")
                self._next_line_at = now + self.first_interval
            elif self._live is not None:
                self._live.console.print(f"{self._short_description(40)}: {message}",
                                         markup=False, highlight=False)
        if self.mode == "lines" and now >= self._next_line_at:
            self._print(self.line())
            self._next_line_at, self._line_steps = now + self.interval, steps
        elif self._live is not None:
            self._live.refresh()

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        elif (self.mode == "lines" and self._compiled_at is not None
              and self._line_steps != self._steps):  # the final line, unless the last said it
            self._print(self.line())
        self.mode = None

    # -- what is shown ----------------------------------------------------------------------------
    def _left(self, now: float) -> float | None:
        """Seconds to the end at the rate measured since compilation, counted down between
        updates."""
        t0, s0 = self._origin
        if self._compiled_at is None or self._steps <= s0 or self._updated_at <= t0:
            return None
        rate = (self._steps - s0) / (self._updated_at - t0)
        return max(0.0, (self.total - self._steps) / rate - (now - self._updated_at))

    def _short_description(self, width: int, shortest: bool = False) -> str:
        """The description in ``width`` columns: a ``module:`` prefix of the environment goes
        first (always if ``shortest``), then the end is cut."""
        d = self.description
        if (len(d) > width or shortest) and ":" in d:
            d = f"{d.split(' ', 1)[0]} {d.rsplit(':', 1)[1]}" if " " in d else d.rsplit(":", 1)[1]
        return d[:width]

    def _percent(self) -> int:
        return int(100 * self._steps / self.total) if self.total else 100

    def _fields(self, now: float, speed: tuple[str, ...], ret: str, time_forms: tuple[str, ...]
                ) -> dict[str, tuple[str, ...]]:
        """Speed, return, up to two losses and time, each as its forms: ``speed``, ``ret`` and
        ``time_forms`` are format strings of (speed, its short form), of the return, and of
        (elapsed, left), the last of ``time_forms`` where the end is unknown."""
        values, left = self._shown, self._left(now)
        elapsed = clock_time(now - self._started)
        if left is None or self._steps >= self.total:
            times = (time_forms[-1].format(elapsed),)
        else:
            times = tuple(f.format(elapsed, clock_time(left)) for f in time_forms[:-1])
        v, r = self._per_second, values["return"]
        losses = list(values.items())[1:]
        return {"speed": tuple(f.format(v, short(v)) for f in speed) if v else (),
                "return": (ret.format(r),) if r is not None else (),
                **{f"loss{i}": (f"{k} {x:.3g}",) if x is not None else ()
                   for i, (k, x) in enumerate(losses)},
                "time": times}

    def line(self) -> str:
        """The plain status line of the "lines" mode: it gives way by dropping the second loss,
        shortening the time and the speed, then dropping the speed, the first loss, the time."""
        with self._lock:
            now = self._clock()
            head = (f"[{self._short_description(40)}] {self._steps:,}/{self.total:,} {self.unit}"
                    f" ({self._percent()}%)")
            speed = (f"{{0:,.0f}} {self.unit}/s", f"{{1}} {self.unit}/s")
            parts = {"head": (head,),
                     **self._fields(now, speed, "return {:.1f}",
                                    ("{} elapsed, {} left", "{}<{}", "{} elapsed"))}
        plan = ["-loss1", "time", "speed", "-speed", "-loss0", "-time", "-return"]
        return " | ".join(_fit(parts, LINE_WIDTH, 3, plan).values())[:LINE_WIDTH]

    def render(self, width: int) -> Text:
        """The bar in ``width`` columns, one line: it gives way by dropping the second loss and
        the speed, shortening the description and the time, then dropping the first loss, the
        time, the return, the bar, the count, and at last cutting the description."""
        with self._lock:
            return self._render(width, self._clock())

    def _render(self, width: int, now: float) -> Text:
        line = Text(no_wrap=True, overflow="crop", end="")
        cap = max(15, width // 4)
        description = (self._short_description(cap), self._short_description(cap, True))
        if self._compiled_at is None:
            parts = {"description": description, "spinner": (self._spinner.render(now).plain,),
                     "compiling": (COMPILING, "compiling"),
                     "seconds": (f"{now - self._started:.0f}s",)}
            plan = ["description", "compiling", "-spinner", "-compiling"]
            for i, (name, text) in enumerate(_fit(parts, width, 1, plan).items()):
                line.append(" " * bool(i) + text, style="progress.spinner" * (name == "spinner"))
            line.truncate(width, overflow="crop")
            return line
        unit = "" if self.unit == "steps" else f" {self.unit}"
        parts = {"description": description, "bar": (" " * BAR_MIN,),
                 "percent": (f"{self._percent():>3d}%",),
                 "count": (f"{short(self._steps)}/{short(self.total)}{unit}",),
                 **self._fields(now, ("{1}/s",), "ret {:.1f}", ("{}<{}", "{}", "{}"))}
        plan = ["-loss1", "-speed", "description", "time", "-loss0", "-time", "-return", "-bar",
                "-count"]
        kept = _fit(parts, width, 2, plan)
        used = sum(cell_len(t) for t in kept.values()) + 2 * (len(kept) - 1)
        if used > width:  # nothing else left to give way: cut the description
            d = kept["description"]
            kept["description"] = d[:max(3, len(d) - (used - width))]
            used -= len(d) - len(kept["description"])
        styles = {"description": "progress.description", "percent": "progress.percentage",
                  "count": "progress.download", "speed": "progress.data.speed",
                  "time": "progress.elapsed"}
        for i, (name, text) in enumerate(kept.items()):
            line.append("  " * bool(i))
            if name == "bar":
                line.append_text(self._bar(min(BAR_MAX, BAR_MIN + max(0, width - used))))
            else:
                line.append(text, style=styles.get(name, ""))
        line.truncate(width, overflow="crop")
        return line

    def _bar(self, width: int) -> Text:
        done = self._steps >= self.total
        halves = width * 2 * min(self._steps, self.total) // max(self.total, 1)
        full, half = divmod(halves, 2)
        bar = Text("━" * full + "╸" * half, style="bar.finished" if done else "bar.complete")
        bar.append("━" * (width - full - half), style="bar.back")
        return bar

    def _print(self, line: str) -> None:
        print(line, file=self._file, flush=True)


class _Line:
    """The live renderable: re-rendered by rich's refresh thread at the console's width."""

    def __init__(self, progress: Progress):
        self.progress = progress

    def __rich_console__(self, console, options):
        yield self.progress.render(options.max_width)
