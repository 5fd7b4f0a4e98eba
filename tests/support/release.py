"""A copy of the project's tree that a test can change, and the change an upgrade test deploys."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support.processes import PROJECT_DIR

MIDDLEWARE = Path("restapi") / "middleware.py"
MARK = 'response["X-Code-Release"] = "new"\n        return response\n'


def copy_of_the_tree(destination: Path) -> Path:
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=PROJECT_DIR, capture_output=True, check=True, text=True
    ).stdout.split("\0")
    for name in filter(None, files):
        source = PROJECT_DIR / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def release_on_disk(tree: Path) -> None:
    """The new release: the request-id middleware names it in every answer."""
    path = tree / MIDDLEWARE
    text = path.read_text()
    old = "        response[REQUEST_ID_HEADER] = request.id\n        return response\n"
    assert text.count(old) == 1
    path.write_text(text.replace(old, "        response[REQUEST_ID_HEADER] = request.id\n        " + MARK))
