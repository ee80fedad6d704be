"""YAML the loader cannot turn into settings is a ConfigError naming the source, never an
exception from inside the parser (the organisation page passes a form field straight in)."""

from __future__ import annotations

import pytest

from edge.yamlfile import ConfigError, parse_mapping


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("since: 0000-01-01\n", "year 0 is out of range"),  # found by the page fuzz test
        ("since: 2024-02-30\n", "day is out of range"),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
        ("a: 1\na: 2\n", "a"),
        ("- a\n- b\n", "expected a mapping"),
    ],
)
def test_unusable_yaml_is_a_config_error(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as err:
        parse_mapping(text, "organisation", "sites:")
    assert str(err.value).startswith("organisation: ")
