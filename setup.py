"""Builds the native ALS extractor (``meshwatch.decoding._native``, Cython) with the package.

Everything else is declared in ``pyproject.toml``. The extension is optional: when it cannot
be built (no C compiler), the package still installs and meshwatch uses its pure-Python
fallback on upb, saying so in its log. ``MESHWATCH_REQUIRE_NATIVE=1`` turns a failed build into
an error (CI sets it, so a broken extension cannot go unnoticed).
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:
            self._fallback(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._fallback(exc)

    @staticmethod
    def _fallback(exc: Exception) -> None:
        if os.environ.get("MESHWATCH_REQUIRE_NATIVE") == "1":
            raise exc
        print(
            f"meshwatch: the native ALS extractor was not built ({exc}); "
            "the pure-Python fallback will be used",
            file=sys.stderr,
        )


def extensions() -> list[Extension]:
    try:
        from Cython.Build import cythonize

        return cythonize(
            [
                Extension("meshwatch.decoding._native", ["meshwatch/decoding/_native.pyx"]),
                Extension("meshwatch.graph._recording", ["meshwatch/graph/_recording.pyx"]),
            ],
            compiler_directives={"language_level": "3"},
        )
    except Exception as exc:
        OptionalBuildExt._fallback(exc)
        return []


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
