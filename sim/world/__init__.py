"""The simulated world's physics: loop, network, transport, link schedules, DNS, world."""
