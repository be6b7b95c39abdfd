"""The event-sourced mail queue: state fold, stores, and the queue manager.

* :mod:`mta.queue.state`: the queue's state as the fold of its events;
* :mod:`mta.queue.store`: the store interface and the in-memory store with a
  simulated disk that survives a simulated crash;
* :mod:`mta.queue.sqlite_store`: the live store (SQLite WAL, group commit);
* :mod:`mta.queue.manager`: accept/submit, attempts, retries, expiry,
  bounces, hold and release.

Names are imported lazily so that leaf modules (``mta.queue.message``) can
be used by :mod:`mta.delivery.dsn` without importing the manager (which imports
:mod:`mta.delivery.dsn`).
"""
from __future__ import annotations

import importlib

_WHERE = {
    "QueueConfig": "policy", "QueuePolicy": "policy", "QueueManager": "manager", "Mailboxes": "mailbox",
    "MessageState": "state", "QueueState": "state", "RcptState": "state",
    "MemoryStore": "store", "QueueStore": "store", "Recovered": "store", "SimulatedDisk": "store",
    "SqliteStore": "sqlite_store",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(name)
    return getattr(importlib.import_module(f"mta.queue.{mod}"), name)
