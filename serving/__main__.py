"""Start the service: ``python -m serving [--host 127.0.0.1] [--port 3000] [--insecure-local]``.

Checks the configuration and loads the champions once in this process first, so a
missing token or model is one sentence and exit code 2 before any server starts; then
replaces itself with the supervisor (``serving/supervisor.py``), which runs ``bentoml
serve serving.service:PostloanService`` as its child and stops all of it, workers
included, within 10 s of SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVICE = "serving.service:PostloanService"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m serving", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=3000, help="port (default 3000)")
    p.add_argument("--insecure-local", action="store_true",
                   help="allow running with no POSTLOAN_API_TOKENS (no authentication)")
    p.add_argument("--check", action="store_true",
                   help="only check the configuration and the champions, then exit")
    args = p.parse_args(argv)
    if args.insecure_local:
        os.environ["POSTLOAN_INSECURE_LOCAL"] = "1"

    from postloan.decisions import strategy
    from postloan.errors import PostloanError
    from serving.config import ServingConfig
    from serving.service import champions_and_sources

    try:
        config = ServingConfig.from_env()
        _, info = champions_and_sources(config)
        strategy.load_strategy_config(config.strategy_config)
    except PostloanError as e:
        print(f"error: postloan service cannot start: {e}", file=sys.stderr)
        return 2
    versions = ", ".join(f"{m} v{i['version']}" for m, i in info.items())
    print(f"champions: {versions} ({next(iter(info.values()))['source']})", file=sys.stderr)
    if args.check:
        return 0
    bentoml = Path(sys.executable).with_name("bentoml")
    cmd = [str(bentoml), "serve", SERVICE, "--host", args.host, "--port", str(args.port),
           "--working-dir", str(ROOT)]
    # exec, not a child: the pid the caller holds (and signals) is the supervisor's, and
    # the models loaded by the checks above are not kept for the life of the server.
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "serving.supervisor", "--", *cmd])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
