"""The event-sourced mail queue.

* :mod:`mta.queue.state`: the queue's state as the fold of its events;
* :mod:`mta.queue.scheduling`, :mod:`mta.queue.outcomes`: the decisions, as
  pure functions (what is due at time t; what a round's outcome records);
* :mod:`mta.queue.manager`, :mod:`mta.queue.rounds`, :mod:`mta.queue.runtime`:
  the I/O around them (entry points and timers, delivery tasks, recording);
* :mod:`mta.queue.store`, :mod:`mta.queue.sqlite_store`: where events and
  bodies are kept; :mod:`mta.queue.policy`: per-domain settings;
  :mod:`mta.queue.message`: the header block and Message-ID of raw bytes;
* :mod:`mta.queue.live`: the live relay process.
"""
