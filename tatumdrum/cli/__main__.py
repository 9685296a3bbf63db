"""`python -m tatumdrum.cli`: the same command as `tatumdrum`."""
from ..__main__ import main

main()
