"""`python -m core.metadata --listen ADDRESS:PORT`: the metadata server of one network
host, started and stopped by `host apply` like dnsmasq. The database comes from
NETCON_DATABASE_URL."""

from __future__ import annotations

import argparse
import sys

from aiohttp import web

from core.config import load_settings
from core.metadata.app import make_app
from core.service import NetconService


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.metadata")
    parser.add_argument("--listen", default="0.0.0.0:8775", metavar="ADDRESS:PORT")
    parser.add_argument("--pid-file", help="written once the server listens")
    args = parser.parse_args(argv)
    address, _, port = args.listen.rpartition(":")
    service = NetconService(None, load_settings(), create=False)
    app = make_app(service.instance_metadata)

    async def started(_: web.Application) -> None:
        if args.pid_file:
            import os

            with open(args.pid_file, "w") as file:
                file.write(f"{os.getpid()}\n")

    app.on_startup.append(started)
    web.run_app(app, host=address or "0.0.0.0", port=int(port), print=None, access_log=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
