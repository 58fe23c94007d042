"""Repository-wide pytest configuration: Hypothesis profiles, pytester.

`ci` (the default) is derandomized with fixed example counts, so `make test` is
reproducible; `deep` explores far more (`make test-deep`).
"""

import os

from hypothesis import HealthCheck, settings

# pytester runs small test projects that use our plugin (tests/plugin).
pytest_plugins = ["pytester"]

settings.register_profile(
    "ci",
    max_examples=60,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("deep", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
