"""Schemathesis hooks of tests/api/schema.sh (loaded through SCHEMATHESIS_HOOKS).

- application/x-ndjson bodies: the schema describes them as an array of
  records; on the wire each record is one JSON line.
- Content-Encoding: a request that names gzip or zstd gets its body
  compressed so, as a shipper would send it (the schema describes the
  decoded body), so generated batches reach the decoders behind it.
- CPython 3.11 before 3.11.8 can fail ast.parse with "SystemError: AST
  constructor recursion depth mismatch" when Hypothesis describes a lambda
  deep in a recursive strategy's repr (only a name for messages); the
  description falls back to a plain name then.
"""
import gzip
import json

import schemathesis
import zstandard

try:  # a private module of Hypothesis (pinned in requirements.txt)
    import hypothesis.internal.lambda_sources as _lambda_sources
except ImportError:
    _lambda_sources = None

if _lambda_sources is not None:
    _describe = _lambda_sources.lambda_description

    def _safe_describe(f):
        try:
            return _describe(f)
        except SystemError:
            return "lambda: <source not parsed>"

    _lambda_sources.lambda_description = _safe_describe


def _encode(ctx, body):
    headers = ctx.case.headers or {}
    enc = next((v for k, v in headers.items() if k.lower() == "content-encoding"), "")
    enc = enc.strip().lower() if isinstance(enc, str) else ""
    if enc in ("gzip", "x-gzip"):
        return gzip.compress(body)
    if enc == "zstd":
        return zstandard.ZstdCompressor().compress(body)
    return body


def _text(value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return None


@schemathesis.serializer("application/json")
def _json(ctx, value):
    body = _text(value)
    if body is None:
        body = json.dumps(value).encode("utf-8", "surrogatepass")
    return _encode(ctx, body)


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx, value):
    if value is None:
        return None
    body = _text(value)
    if body is None:
        items = value if isinstance(value, list) else [value]
        body = "".join(json.dumps(v) + "\n" for v in items).encode("utf-8", "surrogatepass")
    return _encode(ctx, body)
