"""`vmprep plan`: see a first boot before it happens (docs/plan.md). The agent's own engine
runs dry over what render would write and what the config service would send."""
