"""`python -m bp_common.cli`: the same as the `bp` command."""

from bp_common.cli import main

main()
