"""Guards every question passes before a model call, and checks every answer passes after it.

Modules: `normalize` (Unicode clean-up, ASCII-smuggling reveal), `injection` (direct and
indirect prompt-injection detection with threat levels), `pii` (redaction for logs and the
ledger), `output` (canary / system-prompt leak blocking, exfiltration-link stripping),
`ratelimit`, `budget`, `cache` and `pipeline` (wiring them into one request lifecycle).
Import the submodule you need; this package imports nothing so that none of them pays for
the others.
"""
