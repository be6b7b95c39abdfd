"""The clusters mxsim starts carry its Dask settings and a frozen start-up
heap; a cluster named by address is used as its owner set it up."""
from __future__ import annotations

import gc

import dask
import distributed  # noqa: F401  (its defaults join dask.config on import)

from sim.sweep.run import LOCAL_CONFIG, connect


def _worker_state(dask_worker):
    import dask as worker_dask
    return ({k: worker_dask.config.get(k) for k in LOCAL_CONFIG},
            "profile" in dask_worker.periodic_callbacks,
            dask_worker.periodic_callbacks["tick"].callback_time,
            gc.get_freeze_count() > 0)


def _scheduler_tick(dask_scheduler):
    return dask_scheduler.periodic_callbacks["tick"].callback_time


def test_mxsims_cluster_has_no_profiler_slower_monitors_and_a_frozen_heap():
    before = dask.config.get("distributed.worker.profile.enabled")
    client, cluster = connect(None, 1)
    try:
        [(settings, profiling, tick, frozen)] = client.run(_worker_state).values()
        assert settings == LOCAL_CONFIG
        assert not profiling and frozen
        assert tick == 1000 and client.run_on_scheduler(_scheduler_tick) == 1000
        assert all(n.periodic_callbacks["memory_monitor"].callback_time == 1000
                   for n in cluster.workers.values())
    finally:
        client.close()
        cluster.close()
    # Set for the cluster's start only: the caller's configuration is untouched.
    assert dask.config.get("distributed.worker.profile.enabled") == before
    assert dask.config.get("distributed.admin.tick.interval") != "1s"


def test_a_cluster_by_address_keeps_its_own_settings():
    from dask.distributed import LocalCluster

    # The scheduler's HTTP server on a free port: other tests' clusters may hold 8787.
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                      scheduler_kwargs={"dashboard_address": ":0"}) as own:
        client, cluster = connect(own.scheduler_address, None)
        try:
            assert cluster is None
            [(settings, profiling, tick, frozen)] = client.run(_worker_state).values()
        finally:
            client.close()
    assert settings["distributed.worker.profile.enabled"] is True
    assert profiling and tick == 20 and not frozen
