"""`bp genie-sim serve`: Genie Sim's protocol answered by the collector's MuJoCo world.

`scene` plays one Genie Sim session on MuJoCo, `servicer` answers the four aimdk.protocol
services from it, `listener` binds them to a port. Like Genie Sim itself it speaks plaintext,
so it listens on loopback unless told otherwise.
"""
