"""Where the data files that ship with the package live.

An installed wheel carries ``sql/``, ``templates/`` and ``openapi/`` inside the package; a
source checkout (editable install, tests) has them at the top of the repository. Both places
are found relative to this module, never relative to the working directory.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@cache
def data_dir(name: str) -> Path:
    """The directory ``name`` (``sql``, ``templates``, ``openapi``) of this installation."""
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"authserver is installed without its {name}/ directory")
