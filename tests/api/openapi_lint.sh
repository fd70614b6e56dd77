#!/usr/bin/env bash
# tests/api/openapi_lint.sh - docs/openapi.yaml is a valid OpenAPI 3.0
# document (openapi-spec-validator: structure, $refs, schema keywords), and
# every operation names the statuses every daemon can answer with.
. "$(dirname "$0")/../integration/lib.sh"

PY=$(bash "$ROOT/tests/integration/venv.sh") || fail "venv"
VALIDATOR=$(bash "$ROOT/tests/integration/venv.sh" --bin openapi-spec-validator) || fail "venv"
SCHEMA="$ROOT/docs/openapi.yaml"
"$VALIDATOR" "$SCHEMA" >"$WORK/validator.out" 2>&1 ||
    { cut -c1-400 "$WORK/validator.out" | tail -n 20 >&2; fail "openapi-spec-validator refuses docs/openapi.yaml"; }
"$PY" - "$SCHEMA" <<'PY' || fail "docs/openapi.yaml: operations miss statuses"
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
assert doc["openapi"] == "3.0.3", doc["openapi"]
bad = []
n = 0
for path, item in doc["paths"].items():
    for method, op in item.items():
        if method not in ("get", "put", "post", "delete", "patch", "head", "options"):
            continue   # path-level parameters, summary
        n += 1
        have = set(op["responses"])
        # every route answers 405 for other methods; API routes add the HTTP
        # layer's 408/431 and their auth's 401
        need = {"405"}
        if path.startswith("/v1/"):
            need |= {"401", "408", "431"}
        missing = need - have
        if not any(s.startswith("2") for s in have):
            missing.add("2xx")
        if missing:
            bad.append(f"{method.upper()} {path}: no {sorted(missing)}")
for b in bad:
    print(b)
print(f"{n} operations checked")
sys.exit(1 if bad else 0)
PY
say "ok: docs/openapi.yaml is valid OpenAPI $(sed -n 's/^openapi: //p' "$SCHEMA") ($(grep -c '^  /' "$SCHEMA") paths)"
