"""The `latentcast` command: serve, migrate, keys, worker on the server; import, train, forecast, jobs, models as a
client of a server (their code is latentcast.cli_client, which needs none of the server's)."""

import argparse
import logging
import os
import signal
import sys
import tempfile
from pathlib import Path

from latentcast import cli_client
from service.config import Settings, get_settings
from service.storage import keys
from service.storage.db import make_engine, migrate

log = logging.getLogger("latentcast")


def _data_dir_problem(path: Path) -> str | None:
    """Create the data folder (mode 0700: it holds the database, the queue and the admin key) if it is missing,
    and make sure a file can be created in it; None when it can, else the reason in a few words."""
    if path.exists() and not path.is_dir():
        return "it is a file, not a folder"
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None


def _ensure_admin_key(settings: Settings) -> None:
    """On first start with auth on and no keys at all, create an admin key and write it to data_dir/admin.key (0600)
    alone: the log says where it is, never the key (logs are kept and shipped where a key must not go)."""
    if settings.auth == "disabled":
        log.warning("LATENTCAST_AUTH=disabled: every request is allowed without an API key")
        return
    engine = make_engine(settings.db_url)
    try:
        if keys.any_keys(engine):
            return
        try:
            key = keys.create_key(engine, "admin", ["admin"])
        except keys.KeyError_:
            return  # another server starting beside this one made it first
    finally:
        engine.dispose()
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = settings.data_dir.resolve() / "admin.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    os.chmod(path, 0o600)
    log.info("created the first API key (admin scope) in %s (mode 0600): read it there, it is shown nowhere else",
             path)


def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    migrate(settings.db_url)
    print("database is at the newest schema", flush=True)
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from service.api.http_server import server_options
    from service.app import create_app

    migrate(settings.db_url)
    _ensure_admin_key(settings)
    app = create_app(settings)
    # uvicorn stops gracefully on SIGTERM: it stops accepting and lets in-flight requests finish. Afterwards it
    # re-raises the signal with the handler it found; a no-op handler here turns that into a normal exit (0).
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    host = args.host or settings.host
    port = args.port or settings.port
    # The embedded default (no LATENTCAST_QUEUE_URL): one consumer process beside the API, stopped with it.
    # With a queue URL, `latentcast worker` runs on the worker machines and the API servers run none.
    child = None
    if settings.queue_url is None:
        from service.training.worker import ChildWorker

        child = ChildWorker()
        child.start()
    try:
        uvicorn.run(app, host=host, port=port, log_level=args.log_level, **server_options(settings))
    finally:
        if child is not None:
            child.stop()
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from service.training.worker import run_worker

    migrate(settings.db_url)
    status = run_worker(settings, parent_pid=args.parent_pid)
    # Everything is stopped, committed and closed by now; the interpreter's own teardown after torch is loaded
    # (C++ static destructors, thread pools) takes seconds and would only delay whoever waits for this process.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def cmd_keys(settings: Settings, args: argparse.Namespace) -> int:
    # Keys may be made before the first `serve`: bring the schema up first (a no-op when it is current).
    migrate(settings.db_url)
    engine = make_engine(settings.db_url)
    try:
        if args.keys_cmd == "create":
            scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
            print(keys.create_key(engine, args.name, scopes, args.prefix), flush=True)
        elif args.keys_cmd == "list":
            for info in keys.list_keys(engine):
                state = "revoked" if info.revoked_at else "active"
                limited = f"\tprefix={info.prefix}" if info.prefix is not None else ""
                print(f"{info.name}\t{','.join(info.scopes)}\t{state}{limited}")
        else:
            keys.revoke_key(engine, args.name)
            print(f"revoked {args.name}")
    except keys.KeyError_ as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="latentcast", description="Forecasts for irregularly sampled time series.")
    sub = parser.add_subparsers(dest="cmd", required=True)

    serve = sub.add_parser("serve", help="migrate the database, then run the API server")
    serve.add_argument("--host", default=None, help="default: LATENTCAST_HOST or 127.0.0.1")
    serve.add_argument("--port", type=int, default=None, help="default: LATENTCAST_PORT or 8000")
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="bring the database schema to the newest revision").set_defaults(func=cmd_migrate)

    k = sub.add_parser("keys", help="create, list and revoke API keys")
    ksub = k.add_subparsers(dest="keys_cmd", required=True)
    kc = ksub.add_parser("create", help="create a key and print it (alone) on stdout")
    kc.add_argument("name")
    kc.add_argument("--scopes", default="read", help="comma-separated: read, write, admin")
    kc.add_argument("--prefix", default=None,
                    help="limit the key to series keys starting with this (a tenant): it sees, trains on and "
                         "forecasts nothing else; not with the admin scope")
    ksub.add_parser("list", help="list keys (names and scopes; keys themselves are never stored)")
    kr = ksub.add_parser("revoke", help="revoke a key by name")
    kr.add_argument("name")
    k.set_defaults(func=cmd_keys)
    w = sub.add_parser("worker", help="run a training worker: a consumer of the job queue (LATENTCAST_QUEUE_URL)")
    w.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)  # serve's own child
    w.set_defaults(func=cmd_worker)
    cli_client.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "client_command", None) is not None:
        # A client of some server: no settings, data folder or logging of this machine's server are involved.
        return cli_client.run(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    problem = _data_dir_problem(settings.data_dir)
    if problem is not None:
        print(f"latentcast: cannot use the data folder {settings.data_dir.resolve()}: {problem} "
              "(set LATENTCAST_DATA_DIR to a folder this user can write)", file=sys.stderr, flush=True)
        return 1
    status: int = args.func(settings, args)  # argparse's namespace is Any: each command returns its status
    return status


if __name__ == "__main__":
    sys.exit(main())
