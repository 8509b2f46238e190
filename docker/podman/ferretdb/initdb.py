#!/usr/bin/env python3
"""First start of the FerretDB container: what docker/mongo-init/01-restore.sh
does for mongo:7, against the FerretDB the entrypoint runs on 127.0.0.1.

  1. restore /dump/myusers/*.bson (the repository's dump/, mounted read-only)
     with the indexes of its *.metadata.json, as mongorestore --nsInclude
     'myusers.*' does;
  2. create the application user mongo_user / mongo_pass in the admin database
     (or set its password again). FerretDB 1.x has no roles, so the user is
     created with roles: [] and may do what any authenticated user may.

Passwords come from the environment and are never printed.
"""
import glob
import json
import os
import sys
import time

import bson
import pymongo
from pymongo.errors import OperationFailure, PyMongoError


def main() -> int:
    root_user = os.environ["MONGO_INITDB_ROOT_USERNAME"]
    root_pass = os.environ["MONGO_INITDB_ROOT_PASSWORD"]
    app_user = os.environ.get("mongo_user")
    app_pass = os.environ.get("mongo_pass")
    if not app_user or not app_pass:
        print("initdb: mongo_user and mongo_pass must be set for the mongo service", file=sys.stderr)
        return 1
    client = pymongo.MongoClient("127.0.0.1", 27017, username=root_user, password=root_pass,
                                 authSource="admin", serverSelectionTimeoutMS=2000)
    deadline = time.monotonic() + 60
    while True:
        try:
            client.admin.command("ping")
            client.admin.command("listDatabases", nameOnly=True)  # authenticated
            break
        except PyMongoError as e:
            if time.monotonic() > deadline:
                print(f"initdb: FerretDB did not come up: {e}", file=sys.stderr)
                return 1
            time.sleep(0.5)

    db = client["myusers"]
    for path in sorted(glob.glob("/dump/myusers/*.bson")):
        name = os.path.basename(path)[: -len(".bson")]
        with open(path, "rb") as f:
            docs = list(bson.decode_file_iter(f))
        for doc in docs:
            db[name].replace_one({"_id": doc["_id"]}, doc, upsert=True)
        meta = path[: -len(".bson")] + ".metadata.json"
        if os.path.exists(meta):
            with open(meta) as f:
                for index in json.load(f).get("indexes", []):
                    if index.get("name") == "_id_":
                        continue
                    keys = list(index["key"].items())
                    db[name].create_index(keys, name=index["name"], unique=bool(index.get("unique")))
        print(f"initdb: restored {len(docs)} documents into myusers.{name}")

    try:
        client.admin.command("createUser", app_user, pwd=app_pass, roles=[])
        print(f"initdb: created user '{app_user}' in admin (FerretDB 1.x: no roles)")
    except OperationFailure as e:
        if e.code != 51003:  # user already exists
            raise
        client.admin.command("updateUser", app_user, pwd=app_pass)
        print(f"initdb: user '{app_user}' exists in admin; password set again")
    print(f"initdb: users in myusers.users: {db['users'].count_documents({})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
