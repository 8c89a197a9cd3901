"""Put the embedded devnet onto an anvil that runs in its own container.

``python manage.py devnet up`` starts anvil itself on 127.0.0.1, which other containers
cannot reach. In docker-compose (and the k8s dev component) the node is a separate
service listening on 0.0.0.0 (image target ``devnet``); this one-shot deploys the genuine
contracts onto it with ``arbbot.devnet.deploy`` and records ``deployment.json`` (with the
node's service URL) in ``ARBBOT_DEVNET_DIR``; ``python manage.py devnet register`` then
writes the Chain/Dex/Token/Pool rows. Idempotent: a deployment already live on the node is
kept.

    python docker/devnet_init.py --rpc-url http://devnet:8545 [--block-time 1] [--no-v3]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from arbbot.chain.rpc import RpcClient
from arbbot.devnet import deploy, record
from arbbot.errors import ArbbotError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rpc-url", required=True, help="the anvil service, e.g. http://devnet:8545")
    parser.add_argument("--block-time", type=float, default=1.0, help="interval mining after deploy; 0 = automine")
    parser.add_argument("--no-v3", action="store_true")
    parser.add_argument("--signer-key-file", default=None,
                        help="use this key (e.g. a mounted Secret) instead of generating one")
    args = parser.parse_args(argv)

    directory = record.devnet_dir(None)
    directory.mkdir(parents=True, exist_ok=True)
    dep_file = record.deployment_path(None)
    rpc = RpcClient(args.rpc_url, timeout_s=10)
    try:
        if dep_file.is_file():
            dep = record.Deployment.load(dep_file)
            if dep.chain_id == rpc.chain_id() and not deploy.verify_deployment(rpc, dep):
                print(f"devnet already deployed on {args.rpc_url}; nothing to do")
                return 0
        if args.signer_key_file and not (directory / "signer.key").exists():
            shutil.copyfile(args.signer_key_file, directory / "signer.key")
        signer = record.ensure_signer_key(Path(directory))
        dep = deploy.deploy_contracts(rpc, signer=signer, progress=print, v3=not args.no_v3)
        if args.block_time:
            bt = args.block_time
            rpc.call("evm_setIntervalMining", [int(bt) if float(bt).is_integer() else bt])
            rpc.call("evm_setAutomine", [False])
        dep.save(dep_file)
    except ArbbotError as exc:
        print(f"devnet-init failed: {exc}", file=sys.stderr)
        return 1
    print(f"devnet deployed on {args.rpc_url}: {len(dep.tokens)} tokens, {len(dep.pools)} pools; recorded in {dep_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
