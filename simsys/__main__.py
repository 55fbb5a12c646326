"""``python -m simsys``: the same as the ``simsys`` command."""

from .cli import main

main()
