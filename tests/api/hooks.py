"""Schemathesis hooks of tests/api/schema.sh (loaded through SCHEMATHESIS_HOOKS).

- application/x-ndjson bodies: the schema describes them as an array of
  records; on the wire each record is one JSON line.
- CPython 3.11 before 3.11.8 can fail ast.parse with "SystemError: AST
  constructor recursion depth mismatch" when Hypothesis describes a lambda
  deep in a recursive strategy's repr (only a name for messages); the
  description falls back to a plain name then.
"""
import json

import hypothesis.internal.lambda_sources as _lambda_sources
import schemathesis

_describe = _lambda_sources.lambda_description


def _safe_describe(f):
    try:
        return _describe(f)
    except SystemError:
        return "lambda: <source not parsed>"


_lambda_sources.lambda_description = _safe_describe


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx, value):
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    items = value if isinstance(value, list) else [value]
    return "".join(json.dumps(v) + "\n" for v in items).encode("utf-8", "surrogatepass")
