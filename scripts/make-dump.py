#!/usr/bin/env python3
"""Writes dump/myusers/users.bson and users.metadata.json in mongodump layout.

The keys are fixed (user 1's is the seed's one@5cdb5896d7c8), so the file is
reproducible; run it only to regenerate the committed dump.
"""
import json
import pathlib
import struct

USERS = [
    (1, "one@5cdb5896d7c8"),
    (2, "two@7f3a1c9e4b20"),
    (3, "three@a41d6e0b93f7"),
    (4, "four@2c8e5f17ad63"),
    (5, "five@e90b4d2a7c15"),
    (6, "six@5b7f03c8e2d9"),
    (7, "seven@0d6a9e3f41b8"),
]


def element_objectid(name, oid):
    return b"\x07" + name.encode() + b"\x00" + oid


def element_int32(name, value):
    return b"\x10" + name.encode() + b"\x00" + struct.pack("<i", value)


def element_string(name, value):
    raw = value.encode() + b"\x00"
    return b"\x02" + name.encode() + b"\x00" + struct.pack("<i", len(raw)) + raw


def document(elements):
    body = b"".join(elements) + b"\x00"
    return struct.pack("<i", len(body) + 4) + body


def main():
    root = pathlib.Path(__file__).resolve().parent.parent / "dump" / "myusers"
    root.mkdir(parents=True, exist_ok=True)
    out = bytearray()
    for uid, key in USERS:
        oid = bytes.fromhex("5cdb5896d7c8a1b2c3d4e5") + bytes([uid])
        out += document([element_objectid("_id", oid), element_int32("user_id", uid), element_string("user_key", key)])
    (root / "users.bson").write_bytes(bytes(out))
    metadata = {
        "indexes": [
            {"v": 2, "key": {"_id": 1}, "name": "_id_"},
            {"v": 2, "key": {"user_id": 1}, "name": "user_id_1", "unique": True},
        ],
        "uuid": "6f1c2a9e3b7d4e58a0c1d2e3f4a5b6c7",
        "collectionName": "users",
        "type": "collection",
    }
    (root / "users.metadata.json").write_text(json.dumps(metadata, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
