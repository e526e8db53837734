"""File names a stranger may choose, inside one directory someone trusted chose.

The page may save session examples only into the server's save directory (`promptlit serve
--save-dir`). `file_in` turns what a user typed into a path there: a bare file name (no
separators, no ``..``, no hidden or absolute names, no control characters), with the expected
suffix, that is not a link and whose companion files are not links either. Writers replace files
with ``os.replace``, which never follows a link, so nothing outside the directory is written.

Example:
    >>> safe_file_name("my examples")
    'my examples.jsonl'
    >>> try:
    ...     safe_file_name("../../etc/passwd")
    ... except UnsafePathError as e:
    ...     print(str(e).split(". Fix")[0])
    '../../etc/passwd' is not a plain file name: it contains a path separator
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

__all__ = ["UnsafePathError", "file_in", "safe_file_name"]

MAX_NAME_LENGTH = 120
_ALLOWED = re.compile(r"^[\w][\w .,()+=-]*$")  # \w is Unicode letters, digits and '_'
_FIX = "Fix: type a name like my_examples.jsonl; files are saved in the server's save folder only"


class UnsafePathError(ValueError):
    """A file name that could reach outside the save directory (or is not a usable name)."""


def safe_file_name(name: str, *, suffix: str = ".jsonl") -> str:
    """``name`` checked as a bare file name, with ``suffix`` appended when it lacks it.

    Raises:
      UnsafePathError: empty, too long, a path (separators, ``..``, absolute, drive letters),
        hidden (leading dot), or with characters outside letters, digits and ``_ .,()+=-``.
    """
    raw = str(name)
    text = unicodedata.normalize("NFC", raw.strip())
    why = None
    if not text:
        why = "it is empty"
    elif "/" in text or "\\" in text or os.sep in text or (os.altsep and os.altsep in text):
        why = "it contains a path separator"
    elif text in (".", "..") or text.startswith("."):
        why = "it starts with a dot (a hidden file or a parent directory)"
    elif ":" in text:
        why = "it contains ':' (a drive or stream name)"
    elif any(unicodedata.category(c).startswith("C") for c in text):
        why = "it contains control characters"
    elif len(text) > MAX_NAME_LENGTH:
        why = f"it is longer than {MAX_NAME_LENGTH} characters"
    elif not _ALLOWED.match(text):
        why = "only letters, digits, spaces and _ . , ( ) + = - are allowed"
    if why:
        raise UnsafePathError(f"{raw!r} is not a plain file name: {why}. {_FIX}")
    return text if text.endswith(suffix) else text + suffix


def file_in(directory: str | os.PathLike[str], name: str, *, suffix: str = ".jsonl",
            companions: Sequence[str] = (".spec",)) -> Path:
    """The path of file ``name`` inside ``directory`` (which is created if missing).

    ``companions``: suffixes of files written beside it (``<name>.spec``); neither the file nor
    a companion may be a symbolic link (a link placed in the save directory must not redirect
    a write elsewhere).

    Raises:
      UnsafePathError: see `safe_file_name`, or a link where the file or a companion would go.
    """
    root = Path(directory).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    path = root / safe_file_name(name, suffix=suffix)
    if path.parent != root:  # defensive: a name can never leave the directory
        raise UnsafePathError(f"{name!r} would be written outside the save folder. {_FIX}")
    for candidate in (path, *(Path(f"{path}{c}") for c in companions)):
        if candidate.is_symlink():
            raise UnsafePathError(f"{candidate.name} in the save folder is a link; promptlit "
                                  "does not write through links. Fix: pick another name (or "
                                  "ask the server's operator to remove the link)")
    return path
