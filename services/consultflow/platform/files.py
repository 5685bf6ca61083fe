"""Files that one process writes while others read them: keys, certificates, key sets, tokens, passwords.

A reader must only ever find a whole file, the old one or the new one, never one being written (a
component that read a half-written key set once refused every token for its refetch interval). So every
such file is written aside, under a name of its own, and moved into place in one step.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

PRIVATE = 0o600
PUBLIC = 0o644


def replace_file(path: Path, content: bytes, mode: int = PRIVATE) -> None:
    """`path` now holds `content` (and `mode`): readers see the old file until the new one is whole."""
    aside = _written_aside(path, content, mode)
    try:
        aside.replace(path)
    finally:
        aside.unlink(missing_ok=True)


def create_file(path: Path, content: bytes, mode: int = PRIVATE) -> bool:
    """Creates `path` holding `content`, unless it exists: then it is left as it is and the answer is False
    (of several processes creating it at once, exactly one gets True)."""
    aside = _written_aside(path, content, mode)
    try:
        path.hardlink_to(aside)
    except FileExistsError:
        return False
    finally:
        aside.unlink(missing_ok=True)
    return True


def _written_aside(path: Path, content: bytes, mode: int) -> Path:
    descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # owner-only at first
    aside = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(content)
        aside.chmod(mode)
    except BaseException:
        aside.unlink(missing_ok=True)
        raise
    return aside
