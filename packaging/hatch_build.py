"""Hatch build hook: lay out the wheel from the repository's single source files.

The layout is the ``[tool.hatch.build.targets.wheel.hooks.custom.layout]`` table of
pyproject.toml (source file -> path in the wheel). It applies to regular wheels only: an
editable install (``pip install -e .``) gets just a .pth file that puts the working tree
on ``sys.path`` (``dev-mode-dirs``), so ``import visgate_sdk`` loads the repository's
visgate_sdk.py and edits are seen without reinstalling. Copies would shadow it.
"""

from __future__ import annotations

from typing import Any, Dict

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class LayoutHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: Dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        layout = self.config.get("layout", {})
        if not layout:
            raise ValueError("pyproject.toml: [tool.hatch.build.targets.wheel.hooks.custom.layout] is empty")
        build_data["force_include"].update(layout)
