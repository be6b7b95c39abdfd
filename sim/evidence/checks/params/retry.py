"""Parameters of the retry-discipline check.

The parameter models and the causes their counterexamples name: what validating a scenario needs
of :mod:`sim.evidence.checks.retry`, kept apart from the checks so that ``mxsim validate`` loads
neither the checks nor the evidence model.  The checks use these same classes.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from sim.evidence.checks.params import Duration, Host, Hosts, Number, Params
from sim.evidence.retry_bounds import SOURCES, HostRetry, RetryModel, model, rfc5321


Preset = Literal[tuple(SOURCES)]  # type: ignore[valid-type]


class HostRetrySpec(Params):
    preset: Preset = Field(description="the retry preset the host runs (postfix, exim, "
                                       "sendmail, rfc5321, custom)")
    settings: dict[str, Duration] = Field(
        {}, description="the preset's settings the scenario changes (lifetime, "
                        "min_backoff, max_backoff, or the MTA's own names)")
    lifetimes: dict[str, Duration] = Field({}, description="queue lifetime per domain")


class RetryParams(Params):
    hosts: Hosts | None = Field(None, description="hosts judged (default: every host "
                                                  "that queued mail)")
    against: Literal["model", "rfc5321"] = Field(
        "model", description="judge each host by the documented schedule of the MTA it "
                             "models, or by RFC 5321 4.5.4.1 (30 min between retries, "
                             "give-up after at least 4 days)")
    per_host: dict[Host, HostRetrySpec] = Field(
        {}, description="what each host runs (the pipeline fills this in from the "
                        "scenario: sim.evidence.derive)")
    default: HostRetrySpec | None = Field(
        None, description="what a host missing from per_host runs")
    tolerance: Number = Field(
        2.0, description="seconds of slack on the lower bounds (Postfix keeps whole "
                         "seconds and its scan may take a message a second early)")
    round_slack: Number = Field(
        60.0, description="seconds of slack on the upper bounds and after a release: "
                          "gaps are measured from round start to round start, and a "
                          "round may first wait out its connect timeouts")

    def model_for(self, host: str) -> RetryModel:
        if self.against == "rfc5321":
            return rfc5321()
        spec = self.per_host.get(host) or self.default
        if spec is None:
            # Only a check asks (the evidence layer is loaded by then).
            from sim.evidence.checks.base import ParamError
            raise ParamError(f"no retry model for host {host}: give per_host.{host} or "
                             f"default (a preset and its settings)")
        return model(HostRetry(spec.preset, dict(spec.settings), dict(spec.lifetimes)))


#: The parameter model of each check here (a check missing takes none).
PARAMS: dict[str, type[Params]] = {
    "retry-discipline": RetryParams,
}

#: The causes each check here names in its counterexamples (what an
#: ``expect: violated`` may give as ``because:``), with their meanings.
CAUSES: dict[str, dict[str, str]] = {
    "retry-discipline": {
        "retried-too-soon": "a retry sooner than the model's minimum gap",
        "held-tried-before-release": "a held copy tried before any release of its domain",
        "pause-too-long": "no attempt for longer than the model's maximum pause while alive",
        "gave-up-early": "a give-up before the lifetime",
        "gave-up-late": "a give-up, or still queued, more than one maximum pause after the "
                        "lifetime"},
}
