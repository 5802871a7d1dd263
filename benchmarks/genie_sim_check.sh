#!/usr/bin/env bash
# Device check for a GPU host running Genie Sim beside the collector (not for CI): one episode
# per robot the server offers, with timings. See benchmarks/genie_sim_check.py and
# docs/operations.md ("The Genie Sim server image").
#   benchmarks/genie_sim_check.sh EXPORT_DIR [--address 127.0.0.1:50051] [--seconds 10] [--size 224]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-$here/../.venv/bin/python}"
[ -x "$python" ] || python="$(command -v python3)"
export MUJOCO_GL="${MUJOCO_GL:-egl}"
exec "$python" "$here/genie_sim_check.py" "$@"
