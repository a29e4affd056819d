#!/usr/bin/env python3
"""Independent verifier of a countersign audit export (JSON Lines).

Written from the format documented in ARCHITECTURE.md ("Audit trail"), not
from the gateway's code, so an auditor can check an export with nothing but
Python 3 and the `cryptography` package (Debian: python3-cryptography):

    python3 tools/audit_verify.py --pubkey HEX export.jsonl

It recomputes every entry's hash (full entries from their data, `link`
lines from their data digest), checks that each entry links to the one
before, and checks every checkpoint's Ed25519 signature with the given
public key(s) and its head against the chain. Every full entry must be
covered by a checkpoint at or after it. Exit 0: the export holds; 1: it
does not (the first problem is named); 2: it cannot be read.

`--self-test` checks the known digests of the format (the same the Rust
tests pin) and exits.
"""

import argparse
import hashlib
import json
import sys

TAG = "countersign-audit-v1"
CHECKPOINT_TAG = "countersign-audit-checkpoint-v1"
FORMAT = "countersign-audit-export-v1"


def canonical_json(value):
    """No whitespace, keys sorted by their UTF-8 bytes (= code points),
    strings escaped as RFC 8259 requires and no more, integers in decimal."""
    if isinstance(value, float):
        raise ValueError("audit data holds no floating-point numbers")
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: kv[0].encode("utf-8"))
        return "{" + ",".join(canonical_json(k) + ":" + canonical_json(v) for k, v in items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(canonical_json(v) for v in value) + "]"
    # json.dumps escapes ", \\, \b \f \n \r \t and other control characters
    # as \\u00XX; ensure_ascii=False keeps everything else as is.
    return json.dumps(value, ensure_ascii=False)


def data_digest(data):
    return hashlib.sha256(canonical_json(data).encode("utf-8")).hexdigest()


def entry_hash(seq, at_ms, kind, prev, digest):
    text = "\n".join([TAG, str(seq), str(at_ms), kind, prev, digest])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def key_id(public_bytes):
    return hashlib.sha256(public_bytes).hexdigest()[:16]


class Broken(Exception):
    pass


def verify(lines, public_keys):
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    keys = {}
    for k in public_keys:
        raw = bytes.fromhex(k)
        keys[key_id(raw)] = Ed25519PublicKey.from_public_bytes(raw)

    header, links, checkpoints, last_full = None, [], {}, None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        obj = json.loads(line)
        kind = obj.get("type")
        if kind == "header":
            if obj.get("format") != FORMAT:
                raise ValueError(f"line {number}: format {obj.get('format')!r}, expected {FORMAT!r}")
            header = obj
        elif kind == "entry":
            links.append((obj["seq"], obj["at_ms"], obj["kind"], obj["prev"], data_digest(obj["data"])))
            last_full = obj["seq"]
        elif kind == "link":
            links.append((obj["seq"], obj["at_ms"], obj["kind"], obj["prev"], obj["data_sha256"]))
        elif kind == "checkpoint":
            checkpoints[obj["seq"]] = obj
        else:
            raise ValueError(f"line {number}: unknown line type {kind!r}")
    if header is None:
        raise ValueError("no header line")

    expect, covered, checked = None, set(), 0
    for seq, at_ms, kind, prev, digest in links:
        if expect is not None:
            want_seq, want_prev = expect
            if seq != want_seq:
                raise Broken(f"entry {seq}: out of sequence (expected {want_seq})")
            if prev != want_prev:
                raise Broken(f"entry {seq}: its link does not match the previous entry (expected {want_prev}, found {prev})")
        h = entry_hash(seq, at_ms, kind, prev, digest)
        c = checkpoints.get(seq)
        if c is not None:
            key = keys.get(c["key_id"])
            if key is None:
                raise Broken(f"checkpoint {seq}: signed with key {c['key_id']}, which is not among the public keys given")
            message = "\n".join([CHECKPOINT_TAG, str(c["seq"]), c["head"], str(c["at_ms"]), c["key_id"]])
            try:
                key.verify(bytes.fromhex(c["signature"]), message.encode("utf-8"))
            except InvalidSignature:
                raise Broken(f"checkpoint {seq}: its signature does not verify")
            if c["head"] != h:
                raise Broken(f"checkpoint {seq}: it signs head {c['head']}, but the chain's entry has hash {h}")
            covered.add(seq)
        expect = (seq + 1, h)
        checked += 1
    if set(checkpoints) - covered:
        raise Broken(f"checkpoint {min(set(checkpoints) - covered)}: signs an entry the export does not have")
    if last_full is not None and not any(s >= last_full for s in covered):
        raise Broken(f"entry {last_full}: no signed checkpoint in the export covers it")
    return checked, len(covered)


def self_test():
    data = {"b": [1, 2, None, True], "a": {"y": "\"q\"\t", "x": -3}}
    digest = data_digest(data)
    h = entry_hash(7, 42, "webhook.accepted", "0" * 64, digest)
    assert canonical_json(data) == '{"a":{"x":-3,"y":"\\"q\\"\\t"},"b":[1,2,null,true]}', canonical_json(data)
    print(digest)
    print(h)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("export", nargs="?", help="the export file (JSON Lines); - for stdin")
    p.add_argument("--pubkey", action="append", default=[], help="a public key (64 hex digits) from `countersign audit pubkey`")
    p.add_argument("--self-test", action="store_true")
    a = p.parse_args()
    if a.self_test:
        self_test()
        return 0
    if not a.export or not a.pubkey:
        p.error("give the export file and at least one --pubkey")
    try:
        f = sys.stdin if a.export == "-" else open(a.export, encoding="utf-8")
        with f:
            checked, signed = verify(f, a.pubkey)
    except Broken as e:
        print(f"broken: {e}")
        return 1
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"ok: {checked} entries, {signed} checkpoints with verified signatures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
