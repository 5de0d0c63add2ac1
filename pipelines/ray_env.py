"""Starting (or joining) Ray the same way everywhere: CLI, batch jobs, Serve, benchmarks.

Joins the cluster at ``address`` (``--address``) or ``RAY_ADDRESS`` when one is given; otherwise it
always starts a private local Ray. Ray's own default would instead join the last cluster that ``ray
start`` recorded in its temp dir, and fail with ``ConnectionError`` when that cluster has since been
killed (a stale session left behind).

A named cluster that does not answer is an error within seconds (:class:`RayUnreachable`): Ray's own
``ray.init`` would retry such an address every 40 seconds, printing C++ warnings, and never give up.
"""

from __future__ import annotations

import logging
import os
import socket

QUIET_LOGGERS = ("ray", "ray.data", "ray.serve", "ray._private.authentication.authentication_token_setup")


CONNECT_TIMEOUT_S = 5.0
"""How long a named cluster's head may take to accept a TCP connection before the command gives up.
A live head answers in milliseconds, even across a region; longer only delays the error for a typo."""


class RayUnreachable(ConnectionError):
    """The Ray cluster named by ``--address`` or ``RAY_ADDRESS`` does not answer."""


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Join ``address`` (or ``RAY_ADDRESS``) if given, else start a local Ray once per process.

    Raises :class:`RayUnreachable` when the named cluster cannot be found or does not accept a
    connection, before Ray is asked to join it, or when what answers there is not a Ray head."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    # ERROR, not WARNING: Ray warns on every start that token auth is on by default (it should be) and
    # that Ray Data's progress bars are off (ours are the CLI's). Real errors still show.
    kwargs: dict = {"ignore_reinit_error": True, "log_to_driver": False, "logging_level": logging.ERROR}
    if address:
        check_reachable(address)
        try:
            ray.init(address=address, **kwargs)
        except ConnectionError as exc:  # something answers there, but not a Ray head
            raise RayUnreachable(f"could not join a Ray cluster at {address}: {exc}") from None
    else:
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, **kwargs)
    quiet_ray_data()


def check_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Raise :class:`RayUnreachable` unless the head named by ``address`` accepts a TCP connection.

    ``host:port`` is the head's GCS, ``ray://host:port`` its Ray Client server; ``auto`` is the cluster
    that ``ray start`` last recorded on this machine. ``local`` (start one) and anything Ray itself
    would refuse as malformed are left to ``ray.init``."""
    if address == "local":
        return
    if address == "auto":
        from ray._private.services import canonicalize_bootstrap_address_or_die

        try:
            target = canonicalize_bootstrap_address_or_die("auto")
        except ConnectionError as exc:
            raise RayUnreachable(f"--address auto: no Ray cluster was started on this machine ({exc})") from None
    else:
        target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise RayUnreachable(
            f"no Ray cluster answers at {address} ({reason}); start one with `ray start --head`, "
            "or leave out --address and RAY_ADDRESS to run on a private local Ray"
        ) from None


def quiet_ray_data() -> None:
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.verbose_progress = False
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
