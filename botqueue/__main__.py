"""``python -m botqueue``."""

from .cli import main

main()
