"""Build step: the wheel carries copies of specs/ and config/ (the contracts and the default config).

`specs/` and `config/` at the repository root stay the only sources; `lambdallm.shipped` finds the copies in an
installed package and the originals in a checkout (an editable install, a source run).
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED = ("specs", "config")


class BuildPyWithShippedFiles(build_py):  # type: ignore[misc]
    """build_py, then specs/ and config/ copied into lambdallm/_shipped/ of the build."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads the checkout's own folders
            return
        for folder in SHIPPED:
            self.copy_tree(folder, str(Path(self.build_lib, "lambdallm", "_shipped", folder)))


setup(cmdclass={"build_py": BuildPyWithShippedFiles})
