"""Name every path the launcher uses under the var dir, and render the config templates."""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

from feedline.settings import ROOT, StackSettings

TEMPLATES = ROOT / "stack" / "conf"


@dataclass(frozen=True)
class Layout:
    """Paths under the var dir: data/, log/, run/ (pid files), conf/ (rendered); and the
    jars under ``lib`` (the single-node stack's var/lib: a cache every topology shares)."""

    var: Path
    lib: Path

    @property
    def data(self) -> Path:
        return self.var / "data"

    @property
    def logs(self) -> Path:
        return self.var / "log"

    @property
    def run(self) -> Path:
        return self.var / "run"

    @property
    def conf(self) -> Path:
        return self.var / "conf"

    @property
    def plugins(self) -> Path:
        return self.lib / "plugins"

    @classmethod
    def of(cls, stack: StackSettings) -> Layout:
        return cls(stack.var_dir, stack.lib_dir)

    def log(self, name: str) -> Path:
        self.logs.mkdir(parents=True, exist_ok=True)
        return self.logs / f"{name}.log"

    def pid(self, name: str) -> Path:
        return self.run / f"{name}.pid"

    def make_dirs(self) -> None:
        for path in (self.data, self.logs, self.run, self.conf, self.lib):
            path.mkdir(parents=True, exist_ok=True)

    def render(self, template: str, target: str, **values: object) -> Path:
        """Fill ``stack/conf/<template>`` ($name placeholders) into ``var/conf/<target>``."""
        text = string.Template((TEMPLATES / template).read_text()).substitute(values)
        out = self.conf / target
        if not out.exists() or out.read_text() != text:
            out.write_text(text)
        return out
