"""The README's "Testing your code" example, run as a user's test file."""

from __future__ import annotations

import pytest

from tests.e2e.test_readme import readme_block


def test_readme_plugin_example(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_from_readme=readme_block("plugin"))
    pytester.runpytest().assert_outcomes(passed=7)


def test_readme_webhook_example(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_webhooks_from_readme=readme_block("plugin-webhooks"))
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
