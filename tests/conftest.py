"""Shared fixtures. Fixture modules live in tests/fixtures/ and are registered here."""

pytest_plugins = ["tests.fixtures.paths", "tests.fixtures.kafka", "tests.fixtures.store", "tests.fixtures.serving", "tests.fixtures.demo",
                  "tests.fixtures.pipeline_job", "tests.fixtures.reliability"]
