"""Starting (or joining) Ray the same way everywhere: CLI, batch jobs, Serve, benchmarks.

Joins the cluster at ``address`` (``--address``) or ``RAY_ADDRESS`` when one is given; otherwise it
always starts a private local Ray. Ray's own default would instead join the last cluster that ``ray
start`` recorded in its temp dir, and fail with ``ConnectionError`` when that cluster has since been
killed (a stale session left behind).
"""

from __future__ import annotations

import logging
import os

import ray

QUIET_LOGGERS = ("ray", "ray.data", "ray.serve", "ray._private.authentication.authentication_token_setup")


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Join ``address`` (or ``RAY_ADDRESS``) if given, else start a local Ray once per process."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    # ERROR, not WARNING: Ray warns on every start that token auth is on by default (it should be) and
    # that Ray Data's progress bars are off (ours are the CLI's). Real errors still show.
    kwargs: dict = {"ignore_reinit_error": True, "log_to_driver": False, "logging_level": logging.ERROR}
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, **kwargs)
    quiet_ray_data()


def quiet_ray_data() -> None:
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.verbose_progress = False
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
