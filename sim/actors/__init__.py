"""Traffic actors: what sends, spams, probes and dials in during a run.

* :mod:`sim.actors.generate`: arrivals, sizes, recipients, message text,
  all drawn from a seeded ``random.Random``;
* :mod:`sim.actors.sender`: a legitimate sender feeding a real queue;
* :mod:`sim.actors.spammer`: straight to the lowest-priority MX, no retries;
* :mod:`sim.actors.relay_probe`: nmap's 16 open-relay address forms;
* :mod:`sim.actors.dialup`: ETRN or finger to the exchangers on link-up.
"""
