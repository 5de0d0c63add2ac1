"""Starting (or joining) Ray the same way everywhere: CLI, batch jobs, Serve, benchmarks.

Which Ray a command uses, first match wins:

1. ``--address`` or ``RAY_ADDRESS``: that cluster (``local``: a private one, as in 3);
2. the cluster that ``ray start`` left running on this machine (the address Ray records in its temp
   dir), when its head answers: a run then skips Ray's start-up and shut-down (5-6 s of a 10-minute
   episode's 40 s on 2 cores) and reuses the cluster's warm model actors;
3. otherwise a private local Ray, started for this process and gone with it. Ray's own default
   fails here with ``ConnectionError`` when the recorded cluster has since been killed (a stale
   session left behind); this starts a fresh one instead.

A named cluster that does not answer is an error within seconds (:class:`RayUnreachable`): Ray's own
``ray.init`` would retry such an address every 40 seconds, printing C++ warnings, and never give up.
"""

from __future__ import annotations

import logging
import os
import socket
import sys

QUIET_LOGGERS = ("ray", "ray.data", "ray.serve", "ray._private.authentication.authentication_token_setup")


CONNECT_TIMEOUT_S = 5.0
"""How long a named cluster's head may take to accept a TCP connection before the command gives up.
A live head answers in milliseconds, even across a region; longer only delays the error for a typo."""


class RayUnreachable(ConnectionError):
    """The Ray cluster named by ``--address`` or ``RAY_ADDRESS`` does not answer."""


RUNNING_CLUSTER_TIMEOUT_S = 1.0
"""How long the head of the cluster ``ray start`` recorded may take to accept a connection before the
command starts a private Ray instead: it is on this machine, so a live one answers at once."""


_dashboard_url: str | None = None


def dashboard_url() -> str | None:
    """The Ray dashboard of the Ray this process started or joined (None: none known)."""
    return _dashboard_url


def ensure_ray(address: str | None = None, num_cpus: int | None = None, dashboard: bool = False, announce: bool = False) -> bool:
    """Join or start Ray once per process, in the order the module states; True when this call
    started a private local Ray (the caller owns it), False when it joined a cluster or Ray was
    already up.

    Raises :class:`RayUnreachable` when a named cluster cannot be found or does not accept a
    connection, before Ray is asked to join it, or when what answers there is not a Ray head.
    ``num_cpus`` sizes a private Ray only. ``dashboard``: a private Ray starts with its dashboard (on
    127.0.0.1; 5-6 s more start-up on 2 cores, which is why library callers leave it off);
    ``announce``: say the dashboard's address on one stderr line."""
    global _dashboard_url
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    # ERROR, not WARNING: Ray warns on every start that token auth is on by default (it should be) and
    # that Ray Data's progress bars are off (ours are the CLI's). Real errors still show.
    kwargs: dict = {"ignore_reinit_error": True, "log_to_driver": False, "logging_level": logging.ERROR}
    started = False
    context = None
    if address and address != "local":
        check_reachable(address)
        try:
            context = ray.init(address=address, **kwargs)
        except ConnectionError as exc:  # something answers there, but not a Ray head
            raise RayUnreachable(
                f"could not join a Ray cluster at {address}: {exc}. If it uses token authentication (the default for "
                "`ray start` in Ray 2.60), set RAY_AUTH_MODE=token here too, with its token in RAY_AUTH_TOKEN or ~/.ray/auth_token"
            ) from None
    elif address == "local" or (context := _join_running_cluster(kwargs)) is None:
        context = ray.init(address="local", num_cpus=num_cpus, include_dashboard=dashboard, **kwargs)
        started = True
    url = getattr(context, "dashboard_url", None)
    _dashboard_url = (url if url.startswith("http") else f"http://{url}") if url else None
    if announce and _dashboard_url:
        print(f"Ray dashboard: {_dashboard_url} (jobs, actors, logs, metrics)", file=sys.stderr, flush=True)
    quiet_ray_data()
    return started


def running_cluster_address() -> str | None:
    """The address of the cluster ``ray start`` recorded on this machine (``RAY_TMPDIR`` moves the
    record), if its head accepts a connection; None when there is no record or it is stale."""
    from ray._private.services import find_bootstrap_address

    recorded = find_bootstrap_address(None)
    if not recorded:
        return None
    try:
        check_reachable(recorded, timeout_s=RUNNING_CLUSTER_TIMEOUT_S)
    except RayUnreachable:
        return None
    return str(recorded)


def _join_running_cluster(init_kwargs: dict):  # -> ray RayContext | None
    import ray

    recorded = running_cluster_address()
    if recorded is None:
        return None
    try:
        # "auto", not the address itself: only a cluster Ray finds on its own gets the token that
        # `ray start` uses by default (~/.ray/auth_token); an explicit address is joined without it.
        context = ray.init(address="auto", **init_kwargs)
    except ConnectionError:  # the port answers, but it is no longer that cluster's head
        return None
    print(f"using the Ray cluster that `ray start` runs at {recorded} (--address local: a private one)", file=sys.stderr)
    return context


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
