"""``screenalytics``, the console script: the pipeline's commands plus ``serve``.

``screenalytics serve`` binds 127.0.0.1 unless told otherwise and refuses a non-loopback address without
an API token. On SIGINT or SIGTERM (even mid start-up) it stops within seconds; when it started its own
Ray, the jobs still in flight die with it, so they and their stage markers are marked failed first. On a
shared cluster (``--address``, or the one ``ray start`` runs) only its app is removed, and the jobs go on.
Serve keeps the HTTP address it first started with on a cluster, so asking for another one is refused
rather than served somewhere the command does not say.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence

from pipelines import cli as pipeline_cli

from .settings import LOOPBACK_HOSTS, ApiSettings, SettingsError


def _serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=os.environ.get("SCREENALYTICS_DATA_DIR", "data"), help=pipeline_cli.DATA_DIR_HELP)
    p.add_argument("--host", default="127.0.0.1", help="address to bind; beyond loopback an API token is required")
    p.add_argument("--port", type=int, default=8000, help="HTTP port (default: 8000)")
    pipeline_cli.add_address(p)


class _Stop(BaseException):
    """A stop signal, raised where the main thread is. A BaseException, like KeyboardInterrupt, so that
    no library's ``except Exception`` on the way swallows it."""


_stop_requested = threading.Event()
"""Set by the first SIGINT/SIGTERM: checked again once start-up returns, in case the signal arrived
inside library code that caught what it raised. (An API that said "Ctrl-C stops it" and then did not
stop was seen once in the test suite, with SIGINT sent as soon as /health answered; not reproduced.)"""


def _raise_stop(signum, frame) -> None:
    _stop_requested.set()
    raise _Stop(signal.Signals(signum).name)


def serve_command(args: argparse.Namespace) -> int:
    import ray
    from ray import serve

    from pipelines.service import ensure_ray

    from . import jobs
    from .app import deployment

    try:
        settings = ApiSettings.from_env(args.data_dir)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.host not in LOOPBACK_HOSTS and settings.api_token is None:
        print(f"error: refusing to listen on {args.host} without an API token: set SCREENALYTICS_API_TOKEN or SCREENALYTICS_API_TOKEN_FILE", file=sys.stderr)
        return 2
    owns_ray = ensure_ray(args.address, **pipeline_cli.ray_options(args))  # RayUnreachable: the CLI's one-line error, exit 2 (pipelines.cli)
    _stop_requested.clear()
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    code = 0
    try:  # from here on, a signal (even mid start-up) stops the API and cleans up after it
        serve.start(http_options={"host": args.host, "port": args.port})
        elsewhere = _serve_listens_elsewhere(args.host, args.port)
        if elsewhere:
            print(
                f"error: Ray Serve already runs on this cluster at http://{elsewhere} and takes no second address: "
                f"pass --host/--port to match it, or stop it first (`serve shutdown`)",
                file=sys.stderr,
            )
            code = 2
            return code
        serve.run(deployment(args.data_dir), name="screenalytics", route_prefix="/")
        print(f"Screenalytics API on http://{args.host}:{args.port} (docs: /docs); data in {settings.data_uri}. Ctrl-C stops it.", flush=True)
        while not _stop_requested.wait(1.0):
            pass
        raise _Stop("a signal during start-up")
    except (KeyboardInterrupt, _Stop):
        print("stopping", file=sys.stderr, flush=True)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if owns_ray:
            from pipelines.storage import open_storage

            from .state import StateStore

            failed = jobs.fail_in_flight(
                StateStore(settings.db_path), open_storage(settings.data_uri), "failed: the server stopped (screenalytics serve was interrupted)"
            )
            if failed:
                print(f"{failed} job(s) in flight marked failed", file=sys.stderr)
            ray.shutdown()
        elif code == 0:  # a shared cluster keeps running (its jobs too); only our app leaves it
            serve.delete("screenalytics")
    return code


def _serve_listens_elsewhere(host: str, port: int) -> str | None:
    """``host:port`` of a Serve instance already running on the cluster with other HTTP options than
    asked (``serve.start`` keeps the running ones, with only a log line), else None."""
    from ray.serve.context import _get_global_client

    client = _get_global_client()
    if client is None:  # serve.start just connected it; nothing to compare with otherwise
        return None
    config = client.http_config
    return None if (config.host, config.port) == (host, port) else f"{config.host}:{config.port}"


COMMANDS: dict[str, pipeline_cli.Command] = {
    "serve": (_serve_arguments, serve_command, "start the HTTP API (Ray Serve) on a local Ray, or on RAY_ADDRESS's cluster"),
}


def main(argv: Sequence[str] | None = None) -> int:
    return pipeline_cli.main(argv, extra=COMMANDS)


if __name__ == "__main__":
    sys.exit(main())
