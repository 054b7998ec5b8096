"""python -m runtime.cli: attn-score."""

from runtime.cli import main

main()
