"""Genie Sim over its own gRPC protocol: the `genie-sim` backend, and a protocol server on MuJoCo.

The backend (`backend`, `session`) drives any server that speaks Genie Sim's `aimdk.protocol`
(bp_genie_sim_api): a real Genie Sim (Isaac Sim with cuRobo, on a GPU) or `bp genie-sim serve`
(`server/`), which answers the same calls from the collector's MuJoCo world, so the backend
runs end to end on any CPU. What the protocol leaves unsaid is decided once, in `wire` and in
docs/decisions/0020-genie-sim-protocol.md.
"""
