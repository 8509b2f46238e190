"""The seed's service, written again for the benchmark (bench/stack.py).

The seed ran a Flask app under uWSGI, three instances behind nginx
(`uwsgi_pass`), each request one pymongo lookup in MongoDB. This is that
shape, answering the same `/` contract as userkey-backend:

    GET /?user_id=N  -> 200 {"user_id", "user_key", "port", "backend"}
                        400 {"error": "unknown user_id" | "invalid user_id", ...}
    GET /            -> 200 {"port", "backend"}

Configured from the environment: SEED_MONGO_URI, mongo_user / mongo_pass (as
the seed did), SEED_PORT and SEED_NAME (what the answer says served it).
"""
import os

from flask import Flask, jsonify, request
from pymongo import MongoClient
from pymongo.errors import PyMongoError

PORT = int(os.environ.get("SEED_PORT", "0"))
NAME = os.environ.get("SEED_NAME", "flask-%d" % PORT)

app = Flask(__name__)
# One client per process: uWSGI runs this with --lazy-apps, so every worker
# imports the module (and connects) after the fork.
client = MongoClient(os.environ.get("SEED_MONGO_URI", "mongodb://127.0.0.1:27017/"),
                     username=os.environ.get("mongo_user"), password=os.environ.get("mongo_pass"),
                     authSource="admin", serverSelectionTimeoutMS=2000)
users = client[os.environ.get("SEED_DB", "myusers")][os.environ.get("SEED_COLLECTION", "users")]


def answer(status=200, **fields):
    fields.update(port=PORT, backend=NAME)
    return jsonify(fields), status


@app.route("/")
def index():
    user_id = request.args.get("user_id")
    if user_id is None:
        return answer()
    if not (user_id.isascii() and user_id.isdigit()) or len(user_id) > 10 or int(user_id) > 2147483647:
        return answer(400, error="invalid user_id", user_id=user_id)
    try:
        doc = users.find_one({"user_id": int(user_id)}, {"_id": 0, "user_key": 1})
    except PyMongoError:
        return answer(503, error="database unavailable")
    if doc is None:
        return answer(400, error="unknown user_id", user_id=user_id)
    return answer(user_id=user_id, user_key=doc["user_key"])


@app.route("/healthz")
def healthz():
    return answer()
