"""Whether another process holds an ``flock`` on a file (the data folder's ``pmm.lock``, a journal's ``LOCK``)."""
from __future__ import annotations

import fcntl
import os
from pathlib import Path


def lock_held(path: Path, *, follow_links: bool = True) -> bool:
    """True when some process holds an exclusive ``flock`` on ``path``; False when it does not or the file does
    not exist. When it cannot tell (the file cannot be opened, or ``follow_links=False`` and it is a link), True:
    callers use this to decide whether something may be deleted or started, so doubt means "in use"."""
    flags = os.O_RDONLY | (0 if follow_links else getattr(os, "O_NOFOLLOW", 0))
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
