"""Judging explored worlds on a Dask cluster, in a fixed order whatever the timing.

One world is one Dask task, :func:`judge`: it loads the variant's scenario
text with the ordinary loader, runs it with
:func:`sim.pipeline.run_scenario` (nothing written) and says whether the
guarantee's check failed on evidence.  :class:`Worlds` submits the
candidates a search asks about, a window of them at a time, so the
cluster's workers stay busy while the search reads the answers strictly
in the candidates' order: :meth:`Worlds.first_failing` returns the first
failing candidate *in that order*, never the first to finish, so the
search is the same on one worker or many, and however the tasks
interleave.  Answers are remembered by scenario text, so a world is run
once per search.

:attr:`Worlds.worlds` counts the worlds the search needed (every candidate
up to and including the answer of each question), not the speculative ones
that happened to finish first: it too is the same on any cluster.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

#: Statuses of a judged world.  Only ``fail`` counts as a failing world.
STATUSES = ("fail", "pass", "undecided", "invalid", "error")


@dataclass(frozen=True)
class Outcome:
    """What one world said about the guarantee: a status from
    :data:`STATUSES` and the check's detail (or why it could not run)."""

    status: str
    detail: str = ""

    @property
    def fails(self) -> bool:
        """The guarantee's check failed on evidence."""
        return self.status == "fail"


def judge(text: str, file: str, guarantee: str) -> Outcome:
    """Run the scenario ``text`` and judge ``guarantee`` on it (a Dask task).

    A variant the loader refuses is ``invalid``, one whose world cannot be
    built or whose component code fails is ``error``: neither is a failure
    of the guarantee.
    """
    from sim.pipeline import load_string, run_scenario
    from sim.runner import RunnerError
    from sim.scenario.loader import ScenarioError

    try:
        sc = load_string(text, file)
    except ScenarioError as exc:
        return Outcome("invalid", str(exc).splitlines()[0])
    try:
        verdict = run_scenario(sc, write=False).verdict
    except RunnerError as exc:
        return Outcome("error", f"cannot run: {exc}")
    hits = [g for g in verdict.guarantees if g.id == guarantee]
    failing = [g for g in hits if g.status == "fail" and g.decided]
    if failing:
        return Outcome("fail", failing[0].detail)
    if any(g.decided for g in hits):
        return Outcome("pass", hits[0].detail)
    return Outcome("undecided", hits[0].detail if hits else "not judged")


#: ``(worlds run so far, the one just judged)``: progress for a terminal.
OnWorld = Callable[[int, Outcome], None]


class Worlds:
    """The worlds of one search, judged on ``client``'s cluster.

    ``window`` is how many candidates may be in flight at once (default:
    twice the cluster's worker threads); it changes the wall time, never
    an answer.
    """

    def __init__(self, client, guarantee: str, file: str, *, window: int | None = None,
                 on_world: OnWorld | None = None) -> None:
        self.client = client
        self.guarantee = guarantee
        self.file = file
        self.window = window or max(2, 2 * sum(client.nthreads().values()))
        self.on_world = on_world
        self.runs = 0                  # tasks actually run, speculative ones included
        self._memo: dict[str, Outcome] = {}
        self._needed: set[str] = set()

    @property
    def worlds(self) -> int:
        """Distinct worlds the search's answers depended on."""
        return len(self._needed)

    @property
    def refused(self) -> int:
        """Of those, the ones the scenario format refused."""
        return sum(self._memo[t].status == "invalid" for t in self._needed)

    def outcome(self, text: str | None) -> Outcome:
        """A remembered answer (``None`` text: a variant that does not fit)."""
        return Outcome("invalid", "the key path does not fit") if text is None \
            else self._memo[text]

    def first_failing(self, texts: Iterable[str | None]) -> int | None:
        """The index of the first failing candidate in ``texts`` (None: no
        candidate fails).  Later candidates may be run speculatively; their
        answers are remembered but do not change this one."""
        judged = self._judged(texts)
        try:
            for i, (text, outcome) in enumerate(judged):
                self._need(text)
                if outcome.fails:
                    return i
            return None
        finally:
            judged.close()           # cancels the speculative worlds still running

    def every(self, texts: Iterable[str | None]) -> Iterator[Outcome]:
        """The outcome of every candidate, in order (as each is known)."""
        for text, outcome in self._judged(texts):
            self._need(text)
            yield outcome

    def _need(self, text: str | None) -> None:
        # A variant whose key path does not fit is judged without a world: not counted.
        if text is not None:
            self._needed.add(text)

    def _judged(self, texts: Iterable[str | None]) -> Iterator[tuple[str | None, Outcome]]:
        """``(text, outcome)`` in the order of ``texts``, keeping up to
        ``window`` worlds in flight ahead of the one being read."""
        from dask.distributed import wait

        source = iter(texts)
        ahead: list[str | None] = []         # read from source, not yet yielded
        flying: dict[str, object] = {}       # text -> future
        exhausted = False
        try:
            while True:
                while not exhausted and len(flying) < self.window:
                    try:
                        text = next(source)
                    except StopIteration:
                        exhausted = True
                        break
                    ahead.append(text)
                    if text is not None and text not in self._memo and text not in flying:
                        flying[text] = self.client.submit(judge, text, self.file, self.guarantee,
                                                          pure=False)
                if not ahead:
                    return
                head = ahead[0]
                if head is not None and head not in self._memo:
                    wait([flying[head]])
                    self._record(head, flying.pop(head).result())
                # Answers that finished meanwhile are collected, so the window refills.
                for text in [t for t, f in flying.items() if f.done()]:
                    self._record(text, flying.pop(text).result())
                ahead.pop(0)
                yield head, self.outcome(head)
        finally:
            for future in flying.values():
                future.cancel()

    def _record(self, text: str, outcome: Outcome) -> None:
        self._memo[text] = outcome
        self.runs += 1
        if self.on_world is not None:
            self.on_world(self.runs, outcome)
