"""Reading a scene file with usd-core: the stage, its objects, physics, semantics and frame."""
