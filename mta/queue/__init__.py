"""The event-sourced mail queue: state fold, decisions, stores, and the manager.

Import from the defining modules (``mta.queue.manager``, ``mta.queue.store``...).
"""
