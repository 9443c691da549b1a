"""Developer tools that generate files shipped in the package; never installed, never
imported by vmprep at run time (setup.cfg packages only `vmprep*`)."""
