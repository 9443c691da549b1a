"""What the agent and the rest of vmprep must agree on, in one place: standard library only,
Python 3.8, packed into agent.pyz beside `vmprep/agent/` (docs/internals.md, "Layers").

Durations, strict JSON, crash-safe writes, RFC 3339 times, canonical JSON, the `ed25519:` key
form and key ids, the computer-name rule, cmd.exe's code pages and the agent's Python floor.
Imports nothing but the standard library; any Python parses this file (the floor check is
imported through it before anything else).
"""
