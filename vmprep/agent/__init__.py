"""The vmprep first-boot agent: standard library only, shipped as agent.pyz."""
