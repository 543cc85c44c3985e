"""A rich progress bar: environment steps, steps per second and the recent episode return."""
from __future__ import annotations

from collections import deque

from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)


class Progress:
    def __init__(self, total_steps: int, enabled: bool, description: str):
        self._recent: deque[float] = deque(maxlen=20)
        self._bar = None
        if enabled:
            self._bar = RichProgress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("steps"), TextColumn("{task.fields[sps]} steps/s"),
                TextColumn("return {task.fields[ret]}"), TimeElapsedColumn(),
                TimeRemainingColumn())
            self._bar.start()
            self._task = self._bar.add_task(description, total=total_steps, sps="-", ret="-")

    def update(self, steps: int, sps: float | None, rows) -> None:
        for row in rows or ():
            if row["episode_return"] != "":
                self._recent.append(row["episode_return"])
        if self._bar is not None:
            ret = f"{sum(self._recent) / len(self._recent):.1f}" if self._recent else "-"
            self._bar.update(self._task, completed=steps, ret=ret,
                             sps=f"{sps:,.0f}" if sps else "-")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
