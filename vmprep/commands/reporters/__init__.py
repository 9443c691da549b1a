"""The one home of vmprep's output: core packages return values (problems, a render result and
its explanation, a sysprep plan and outcome, a status view); these modules show them as text,
rich tables or JSON. Only `vmprep/cli.py` and `vmprep/commands/` import them (and click/rich).

- `console`: the two consoles (data on stdout, messages on stderr) and the verbosity.
- `problems`: `validate`'s problems as text, JSON or GitHub annotations (click only, no rich).
- `explain`: `render --explain` as tables or JSON.
- `sysprep`: `sysprep`'s checks, plan, progress lines and outcome.
- `status`: `status`'s instance table or JSON.
"""
