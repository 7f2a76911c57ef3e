"""Module names say what they hold, once: inside the operator's package no two modules share
a file name (``collector/links.py`` beside ``links.py`` made every traceback and import a
guess about which one was meant)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

import trustspace_operator

pytestmark = pytest.mark.unit

ROOT = Path(trustspace_operator.__file__).parent


def test_no_two_operator_modules_share_a_name() -> None:
    where: dict[str, list[str]] = defaultdict(list)
    for path in ROOT.rglob("*.py"):
        if path.name != "__init__.py":
            where[path.name].append(str(path.relative_to(ROOT)))
    shared = {name: sorted(paths) for name, paths in where.items() if len(paths) > 1}
    assert shared == {}
