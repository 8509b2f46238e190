#!/usr/bin/env python3
"""Health check: ping through the container's own address, not 127.0.0.1, so it
passes only once the first-start initialisation (which listens on 127.0.0.1
alone) is done and the real server listens, as mongo:7's check in
docker/compose.yaml does. ping needs no login."""
import socket
import sys

import pymongo

try:
    pymongo.MongoClient(socket.gethostname(), 27017, serverSelectionTimeoutMS=3000).admin.command("ping")
except Exception as e:  # noqa: BLE001 - any failure is "unhealthy"
    print(f"ping failed: {e}", file=sys.stderr)
    sys.exit(1)
