"""Canonical record bytes (RFC 8785) and record hashes."""

import json
from datetime import datetime, timezone

from investigator import schema


def test_rfc8785_section_3_2_4_example():
    # The example of RFC 8785 section 3.2.4 (parsed with Python's json, as the RFC's input text).
    source = ('{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001], '
              '"string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "literals": [null, true, false]}')
    expected = ('{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
                '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}')
    assert schema.canonical_json(json.loads(source)).decode("utf-8") == expected


def test_rfc8785_sorts_keys_by_utf16_code_units():
    # RFC 8785 3.2.3: "\u20ac" (one unit) sorts before "\ud83d\ude00" (surrogates) ... and after ASCII.
    obj = {"\u20ac": 1, "\U0001f600": 2, "a": 3, "\r": 4}
    assert list(json.loads(schema.canonical_json(obj))) == ["\r", "a", "\u20ac", "\U0001f600"]


def test_hash_ignores_provenance_and_null_fields():
    base = {"message_id": "1", "ts": datetime(2026, 11, 18, tzinfo=timezone.utc), "text": "加班费"}
    with_provenance = {**base, "source_file": "a.jsonl", "source_position": "line 9", "reply_to": None}
    assert schema.record_hash(base, "messages") == schema.record_hash(with_provenance, "messages")
    assert schema.record_hash(base, "messages") != schema.record_hash({**base, "text": "加班"}, "messages")
    assert schema.record_hash(base, "messages") != schema.record_hash(base, "events")
