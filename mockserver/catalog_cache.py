"""Load each set of contract directories once per process.

Parsing and checking every contract costs far more than a test that uses the
mock, and a test suite builds a fresh mock for every test. `cached_catalog`
returns the catalog already loaded for the same directories as long as none of
their files changed (path, size and modification time of each file), so an
edited contract is still picked up at once. A `Catalog` is never modified after
loading, so one instance is shared by every mock built from it.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from mockserver.catalog import Catalog
from mockserver.contracts import builtin_contracts_dir

Stamp = tuple[tuple[str, int, int], ...]
_Key = tuple[bool, tuple[Path, ...]]

_lock = threading.Lock()
_loaded: dict[_Key, tuple[Stamp, Catalog]] = {}


def cached_catalog(*directories: Path, builtin: bool = True) -> Catalog:
    """`Catalog.load(*directories, builtin=builtin)`, reused while no file changed."""
    roots = tuple(Path(d).resolve() for d in directories)
    key = (builtin, roots)
    with _lock:
        hit = _loaded.get(key)
    if hit is not None and _unchanged(hit[0]):
        return hit[1]
    stamp = _stamp(((builtin_contracts_dir(),) if builtin else ()) + roots)
    # Loading runs outside the lock: two threads may both load, the last one wins.
    catalog = Catalog.load(*roots, builtin=builtin)
    with _lock:
        _loaded[key] = (stamp, catalog)
    return catalog


def clear_catalog_cache() -> None:
    """Forget every cached catalog (the next mock loads its contracts again)."""
    with _lock:
        _loaded.clear()


def _stamp(roots: tuple[Path, ...]) -> Stamp:
    # Every directory and file under each root, contracts and the media next to
    # them alike; a missing root stamps as absent and `Catalog.load` reports it.
    entries: list[tuple[str, int, int]] = []
    for root in roots:
        _scan(str(root), entries)
    return tuple(entries)


def _scan(directory: str, entries: list[tuple[str, int, int]]) -> None:
    try:
        info = os.stat(directory)
        listing = list(os.scandir(directory))
    except OSError:
        entries.append((directory, -1, -1))
        return
    # A directory's mtime changes when an entry is added, removed or renamed.
    entries.append((directory, info.st_mtime_ns, -1))
    for entry in listing:
        try:
            if entry.is_dir():
                _scan(entry.path, entries)
            elif entry.is_file():
                info = entry.stat()
                entries.append((entry.path, info.st_mtime_ns, info.st_size))
        except OSError:  # removed while we looked: the next call sees the change
            continue


def _unchanged(stamp: Stamp) -> bool:
    # Run for every mock a test builds: a stat of each known path, no listing.
    for path, mtime, size in stamp:
        try:
            info = os.stat(path)
        except OSError:
            if mtime != -1:
                return False
            continue
        if info.st_mtime_ns != mtime or (size != -1 and info.st_size != size):
            return False
    return True
