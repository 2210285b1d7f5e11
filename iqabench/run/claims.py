"""Cell claims: several processes (two ``iqabench run``, or a Ray driver and a
local run) share one store and never compute the same cell at the same time.

Before computing a cell a process claims it in the store's ``claims`` table
inside an immediate (write-locking) transaction: the claim succeeds when the
cell has no claim, or its claim is this owner's, or its claimer is gone --
its heartbeat is older than the lease (a process on another host, or a hung
one), or it ran on this host and its process no longer exists (a crash or
SIGKILL: reclaimed at once).  A background thread renews the heartbeat of
every claim the owner holds (a batch may take longer than the lease), with
its own connection.  SQLite's busy timeout alone is not enough: two
processes would both find the cell unfinished and both compute it.
"""
from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass, field

SCHEMA = """
CREATE TABLE IF NOT EXISTS claims (
    cell_key TEXT PRIMARY KEY,
    owner TEXT,
    host TEXT,
    pid INTEGER,
    claimed REAL,
    heartbeat REAL
);
"""


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


@dataclass
class Claims:
    """The claims one process (``owner``) holds in the store at ``path``.

    ``lease``: seconds after its last heartbeat that a claim on another host is
    taken over; ``beat``: seconds between heartbeats (well under ``lease``)."""

    path: str
    owner: str
    lease: float = 120.0
    beat: float = 10.0
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)

    def __post_init__(self):
        self.db = self._connect()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        db.executescript(SCHEMA)
        return db

    def holder(self, key: str) -> str | None:
        """Who else holds a live claim on ``key`` (None: nobody, or this owner)."""
        row = self.db.execute("SELECT owner, host, pid, heartbeat FROM claims WHERE cell_key = ?", (key,)).fetchone()
        return None if row is None or not self._live(*row) else row[0]

    def _live(self, owner: str, host: str, pid: int, heartbeat: float) -> bool:
        if owner == self.owner:
            return False
        if time.time() - heartbeat > self.lease:
            return False
        return host != self.host or process_alive(pid)

    def claim(self, key: str) -> str | None:
        """Claim ``key``; None when claimed, else the owner holding it."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            other = self.holder(key)
            if other is None:
                now = time.time()
                self.db.execute("INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?, ?, ?)",
                                (key, self.owner, self.host, self.pid, now, now))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        if other is None:
            self._start_heartbeat()
        return other

    def release(self, key: str) -> None:
        self.db.execute("DELETE FROM claims WHERE cell_key = ? AND owner = ?", (key, self.owner))

    def release_all(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.db.execute("DELETE FROM claims WHERE owner = ?", (self.owner,))

    def close(self) -> None:
        self.release_all()
        self.db.close()

    def _start_heartbeat(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._heartbeat, name="iqabench-claims", daemon=True)
            self._thread.start()

    def _heartbeat(self) -> None:
        db = self._connect()
        try:
            while not self._stop.wait(self.beat):
                try:
                    db.execute("UPDATE claims SET heartbeat = ? WHERE owner = ?", (time.time(), self.owner))
                except sqlite3.OperationalError:  # busy past the timeout: the next beat renews it
                    pass
        finally:
            db.close()
