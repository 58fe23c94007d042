"""Hypothesis strategies for catalog inputs (bounded, valid by construction)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema


def values_for(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values `schema` accepts. Objects, arrays and unions are built here and
    leaves come from hypothesis-jsonschema (whose own object generation relies
    on Hypothesis internals that changed). Sizes stay small: every drawn input
    is really rendered."""
    if "anyOf" in schema:
        return st.one_of([values_for(option) for option in schema["anyOf"]])
    kind = schema.get("type")
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {name: values_for(sub) for name, sub in properties.items() if name in required},
            optional={
                name: values_for(sub) for name, sub in properties.items() if name not in required
            },
        )
    if kind == "array":
        low = int(schema.get("minItems", 0))
        high = min(int(schema.get("maxItems", low + 2)), low + 2)
        return st.lists(values_for(schema.get("items", {})), min_size=low, max_size=high)
    if kind == "integer" and schema.get("maximum", 0) > 4096 and "minimum" not in schema:
        # Pixel sizes: keep rendering cheap.
        return st.integers(1, 512)
    leaf = {k: v for k, v in schema.items() if k not in ("default", "description", "examples")}
    if kind == "string" and "enum" not in leaf:
        leaf.setdefault("maxLength", 40)
    return from_schema(leaf)
