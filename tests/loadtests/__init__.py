"""Load tests that drive the real bots against the loopback platform fakes in tests/fakes/.

They run from a source checkout (`python -m tests.loadtests slack|discord [--json]`), never
against a real platform, and are not part of the installed package."""
