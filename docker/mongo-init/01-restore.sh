#!/bin/bash
# First start of the mongo container only (the official image runs
# /docker-entrypoint-initdb.d/* when /data/db is empty, against a temporary
# mongod bound to 127.0.0.1 without access control, before the real one starts):
#   1. restore /dump (the repository's dump/, mounted read-only) into myusers;
#   2. create the application user mongo_user / mongo_pass in the admin
#      database with readWrite on myusers and nothing else.
# The backends authenticate as that user (authSource=admin is their default).
# The password is handed to mongosh through the environment, never on a
# command line, and is never printed.
set -euo pipefail

: "${mongo_user:?mongo_user must be set for the mongo service}"
: "${mongo_pass:?mongo_pass must be set for the mongo service}"

echo "01-restore.sh: restoring myusers from /dump"
mongorestore --host 127.0.0.1 --port 27017 --quiet --nsInclude 'myusers.*' /dump

echo "01-restore.sh: creating user '${mongo_user}' (readWrite on myusers, authSource admin)"
mongosh --host 127.0.0.1 --port 27017 --quiet admin --eval '
  const user = process.env.mongo_user;
  const pwd = process.env.mongo_pass;
  const roles = [{ role: "readWrite", db: "myusers" }];
  if (db.getUser(user)) {
    db.updateUser(user, { pwd: pwd, roles: roles });
  } else {
    db.createUser({ user: user, pwd: pwd, roles: roles });
  }
  print("users in myusers.users: " + db.getSiblingDB("myusers").users.countDocuments({}));
'
