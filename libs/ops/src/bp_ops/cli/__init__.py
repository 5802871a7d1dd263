"""The operator commands, registered with `bp` through the `blueprint.commands` entry points."""
