"""The collector workers are one managed instance group that the shards' backlog scales from none,
in the variant of the backend the shards ask for: CPU VMs running MuJoCo, or GPU VMs beside a
Genie Sim server (decision 0104).

Each variant is worked out from the HCL the way Terraform would for that backend: the module's
conditional expressions evaluated, its cloud-init rendered, and the worker's environment read
by the collector's own settings.
"""

from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from bp_collector.backends import BACKENDS
from bp_collector.settings import CollectorSettings
from bp_common import stages
from bp_common.config import Settings
from bp_common.runtime.limits import Machine, work_slots_for
from bp_common.topology import ROUTE_BY_STAGE

from tests.deploy.terraform_model import (
    ENVIRONMENT,
    Folder,
    block,
    evaluate,
    expression,
    folder,
    module_folder,
    render,
    render_template,
)

# Shapes of the machine types the example names (Compute Engine's machine type tables).
MACHINES = {
    "c2d-standard-8": Machine(cpus=8, memory_mb=32 * 1024),
    "g2-standard-16": Machine(cpus=16, memory_mb=64 * 1024),
}
GENIE_SIM_IMAGE = "registry/genie-sim@sha256:abc"


@pytest.fixture(scope="module")
def env() -> Folder:
    return folder(ENVIRONMENT)


@pytest.fixture(scope="module")
def collector(env: Folder) -> Folder:
    return folder(module_folder(env.modules["collector"]))


@pytest.fixture(scope="module")
def stage_module(env: Folder) -> Folder:
    return folder(module_folder(env.modules["stage"]))


def backends(env: Folder) -> list[str]:
    """The backends `collector_backend` accepts."""
    condition = block(env.variables["collector_backend"], "validation")["condition"]
    listed = re.search(r"contains\(\[(.*?)\]", condition)
    assert listed, condition
    return re.findall(r'"([^"]+)"', listed.group(1))


@dataclass(frozen=True)
class Variant:
    """What the collector module becomes for one backend and Spot setting."""

    backend: str
    spot: bool
    names: dict[str, Any]
    module: Folder

    def value(self, expr: Any) -> Any:
        return evaluate(expr, self.names)

    @property
    def template(self) -> dict[str, Any]:
        return self.module.resource("google_compute_instance_template", "collector")

    @property
    def accelerators(self) -> list[Any]:
        [dynamic] = [d["guest_accelerator"] for d in self.template["dynamic"]]
        assert "guest_accelerator" not in self.template, "only the dynamic block makes GPUs"
        return list(self.value(dynamic["for_each"]))

    @property
    def scheduling(self) -> dict[str, Any]:
        return {k: self.value(v) for k, v in block(self.template, "scheduling").items()}

    @property
    def environment(self) -> dict[str, str]:
        """The worker container's variables the module adds (base, and Genie Sim's if chosen)."""
        call = self.template["metadata"]["user-data"]
        merged = re.search(r"\benv = merge\(var\.env, local\.base_env, ([^()]*)\)", call)
        assert merged and "gpu = local.gpu," in call, call
        values = {
            **self.names,
            "local.genie_sim_env": self.module.locals["genie_sim_env"],
            "local.genie_sim_scene_dir": self.module.locals["genie_sim_scene_dir"],
        }
        extra = evaluate("${" + merged.group(1) + "}", values)
        variables = self.module.locals["base_env"] | extra
        return {k: str(evaluate(v, values)) for k, v in variables.items()}

    def cloud_init(self) -> dict[str, Any]:
        source = (self.module.path / "cloud-init.yaml.tftpl").read_text()
        rendered = render_template(
            source,
            {
                "env": {"PIPELINE_ENV": "production", **self.environment},
                "gpu": self.names["local.gpu"],
                "registry_host": "us-central1-docker.pkg.dev",
                "genie_sim_image": GENIE_SIM_IMAGE if self.names["local.gpu"] else "",
                "scene_dir": self.module.locals["genie_sim_scene_dir"],
                "collector_image": "registry/bp-collector:1",
                "collector_command": " ".join(self.module.default("collector_command")),
                "stop_grace": self.module.default("shutdown_grace_seconds"),
                "stop_timeout": self.module.default("shutdown_grace_seconds") + 2,
                "otel_image": "registry/otelcol:1",
                "otel_config_b64": base64.b64encode(b"receivers: {}\n").decode(),
            },
        )
        assert rendered.startswith("#cloud-config\n")
        config: dict[str, Any] = yaml.safe_load(rendered)
        return config


def variant(env: Folder, collector: Folder, backend: str, *, spot: bool = True) -> Variant:
    """The module as the example environment calls it for `backend`, with its defaults."""
    call = env.modules["collector"]
    chosen = env.locals["collector_variants"][backend]
    stage_row = env.locals["stages"]["collect"]
    given = {
        f"var.{name}": env.default(name)
        for name in (
            "cpu_collector_machine_type",
            "cpu_collectors_max",
            "gpu_collector_machine_type",
            "gpu_collectors_max",
        )
    } | {"local.stages.collect.work_slots": stage_row["work_slots"]}
    names: dict[str, Any] = {
        "var.backend": backend,
        "var.spot": spot,
        "var.genie_sim_image": GENIE_SIM_IMAGE,
        **{
            f"var.{name}": evaluate(chosen[name], given)
            for name in ("machine_type", "max_instances", "shards_per_instance")
        },
    }
    for name in (
        "accelerator_type",
        "accelerator_count",
        "disk_size_gb",
        "boot_seconds",
        "min_instances",
    ):
        names[f"var.{name}"] = collector.default(name)
    assert expression(call["backend"]) == "var.collector_backend"
    for name in ("machine_type", "max_instances", "shards_per_instance"):
        assert expression(call[name]) == f"local.collector.{name}"
    assert expression(env.locals["collector"]) == "local.collector_variants[var.collector_backend]"
    for local in ("gpu", "on_host_maintenance", "disk_size_gb", "boot_seconds"):
        names[f"local.{local}"] = evaluate(collector.locals[local], names)
    return Variant(backend, spot, names, collector)


def test_exactly_one_collector_group_runs_and_it_is_the_backends_variant(
    env: Folder, collector: Folder, stage_module: Folder
) -> None:
    chosen = backends(env)
    assert sorted(chosen) == sorted(BACKENDS) == sorted(env.locals["collector_variants"])
    assert env.default("collector_backend") == "mujoco"
    module_backends = block(collector.variables["backend"], "validation")["condition"]
    assert all(f'"{b}"' in module_backends for b in chosen)
    # One call, one group, one autoscaler, whatever the backend: nothing is counted in or out.
    call = env.modules["collector"]
    assert "count" not in call and "for_each" not in call
    for kind in (
        "google_compute_instance_template",
        "google_compute_region_instance_group_manager",
        "google_compute_region_autoscaler",
    ):
        [body] = collector.of_type(kind).values()
        assert "count" not in body and "for_each" not in body, kind
    # No Cloud Run pool works shards beside the group, for any backend.
    assert expression(env.modules["stage"]["runs_elsewhere"]) == 'each.key == "collect"'
    pool = stage_module.resource("google_cloud_run_v2_worker_pool", "pull")
    assert expression(pool["count"]) == "local.pool ? 1 : 0"
    for backend in chosen:
        for stage, row in env.locals["stages"].items():
            elsewhere = evaluate(env.modules["stage"]["runs_elsewhere"], {"each.key": stage})
            names = {"local.push": row["delivery"] == "push", "var.runs_elsewhere": elsewhere}
            has_pool = evaluate(stage_module.locals["pool"], names)
            assert has_pool == (row["delivery"] == "pull" and stage != "collect"), (backend, stage)
        # The variant is the backend's: GPUs and Genie Sim with genie-sim, neither with mujoco.
        chosen_variant = variant(env, collector, backend)
        gpu = backend == "genie-sim"
        assert bool(chosen_variant.accelerators) is gpu, backend
        assert ("BP_GENIE_SIM_ADDRESS" in chosen_variant.environment) is gpu, backend
        services = {f["path"] for f in chosen_variant.cloud_init()["write_files"]}
        assert ("/etc/systemd/system/genie-sim.service" in services) is gpu, backend
        assert chosen_variant.environment["BP_COLLECTOR_BACKEND"] == backend


@pytest.mark.parametrize("backend", ["mujoco", "genie-sim"])
def test_the_group_scales_on_the_shards_backlog_from_none_to_the_variants_maximum(
    backend: str, env: Folder, collector: Folder, stage_module: Folder
) -> None:
    chosen = variant(env, collector, backend)
    autoscaler = collector.resource("google_compute_region_autoscaler", "collector")
    assert expression(autoscaler["target"]) == (
        "google_compute_region_instance_group_manager.collector.id"
    )
    policy = block(autoscaler, "autoscaling_policy")
    assert chosen.value(policy["min_replicas"]) == collector.default("min_instances") == 0
    maximum = "cpu_collectors_max" if backend == "mujoco" else "gpu_collectors_max"
    assert chosen.value(policy["max_replicas"]) == env.default(maximum) >= 1
    metric = block(policy, "metric")
    assert metric["name"] == "pubsub.googleapis.com/subscription/num_undelivered_messages"
    assert render(collector.locals["backlog_filter"], {"var.subscription": "bp-x"}) == (
        'resource.type = "pubsub_subscription" AND resource.labels.subscription_id = "bp-x"'
    )
    assert expression(metric["filter"]) == "local.backlog_filter"
    assert expression(env.modules["collector"]["subscription"]) == (
        'module.stage["collect"].subscription'
    )
    assert render(
        stage_module.resource("google_pubsub_subscription", "stage")["name"],
        {"var.stage": "collect"},
    ) == (ROUTE_BY_STAGE["collect"].subscription)
    # Each VM is given as much backlog as it works on at once, and admits no more: its shards
    # per VM are its simulation processes, its work slots and its flow control.
    shards = chosen.value(metric["single_instance_assignment"])
    worker = chosen.environment
    for key in ("BP_COLLECTOR_WORKERS", "BP_WORK_SLOTS", "BP_FLOW_CONTROL_MAX_MESSAGES"):
        assert worker[key] == str(shards), key
    assert shards == (env.locals["stages"]["collect"]["work_slots"] if backend == "mujoco" else 1)
    # Scale in slowly (a removed VM hands its shard back), and wait out a new VM's boot.
    assert block(block(policy, "scale_in_control"), "max_scaled_in_replicas")["fixed"] == 1
    assert chosen.value(policy["cooldown_period"]) == (180 if backend == "mujoco" else 600)
    group = collector.resource("google_compute_region_instance_group_manager", "collector")
    assert "target_size" not in group, "the autoscaler alone sizes the group"


def test_the_cpu_variant_runs_mujoco_on_a_cpu_vm_a_shard_per_core(
    env: Folder, collector: Folder, monkeypatch: pytest.MonkeyPatch
) -> None:
    cpu = variant(env, collector, "mujoco")
    assert cpu.accelerators == [], "no GPU"
    machine_type = cpu.names["var.machine_type"]
    assert machine_type == env.default("cpu_collector_machine_type") == "c2d-standard-8"
    assert expression(cpu.template["machine_type"]) == "var.machine_type"
    # The collect row of the example's stage table is that machine, and its slots the shards it
    # takes: as many simulation processes as its cores and memory hold.
    row = env.locals["stages"]["collect"]
    machine = MACHINES[machine_type]
    assert (float(row["cpu"]), int(row["memory"].removesuffix("Gi")) * 1024) == (
        machine.cpus,
        machine.memory_mb,
    )
    shards = work_slots_for(stages.load("collect").footprint, machine)
    assert cpu.names["var.shards_per_instance"] == row["work_slots"] == shards == 8
    assert cpu.value(cpu.template["disk"][0]["disk_size_gb"]) == 30

    # The collector's own settings read the worker's environment as the CPU variant means it.
    environ = cpu.environment
    assert not [k for k in environ if k.startswith("BP_GENIE_SIM")]
    for key in [k for k in os.environ if k.startswith("BP_")]:
        monkeypatch.delenv(key)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    own = CollectorSettings()
    assert (own.collector_backend, own.collector_workers) == ("mujoco", shards)
    assert Settings().work_slots == shards

    config = cpu.cloud_init()
    files = {f["path"]: f["content"] for f in config["write_files"]}
    assert set(files) == {
        "/etc/bp/collector.env",
        "/etc/bp/otel-collector.yaml",
        "/etc/systemd/system/otel-collector.service",
        "/etc/systemd/system/bp-collector.service",
    }
    assert f"BP_COLLECTOR_WORKERS={shards}" in files["/etc/bp/collector.env"].split()
    worker = files["/etc/systemd/system/bp-collector.service"]
    assert "registry/bp-collector:1 bp collector work" in worker
    assert "--env-file /etc/bp/collector.env" in worker
    rendered = yaml.safe_dump(config)
    for absent in ("genie", "nvidia", "cos-extensions", "--device"):
        assert absent not in rendered.lower(), absent
    assert config["runcmd"][-1] == "systemctl start otel-collector.service bp-collector.service"


def test_the_gpu_variant_runs_one_shard_beside_a_genie_sim_server_over_loopback(
    env: Folder, collector: Folder
) -> None:
    gpu = variant(env, collector, "genie-sim")
    assert gpu.accelerators == [collector.default("accelerator_type")]
    assert collector.default("accelerator_type").startswith("nvidia-")
    assert collector.default("accelerator_count") >= 1
    assert gpu.names["var.machine_type"] == env.default("gpu_collector_machine_type")
    assert MACHINES[gpu.names["var.machine_type"]].cpus >= 8
    assert gpu.value(gpu.template["disk"][0]["disk_size_gb"]) == 200
    worker = gpu.environment
    assert worker["BP_GENIE_SIM_ADDRESS"] == "127.0.0.1:50051"  # plaintext: the VM's loopback
    assert worker["BP_COLLECTOR_WORKERS"] == "1"
    declared = CollectorSettings.model_fields
    assert all(name[3:].lower() in declared for name in worker if name.startswith("BP_GENIE"))
    # The module refuses a GPU VM without its Genie Sim server, or with more than one shard.
    conditions = [p["condition"] for p in block(gpu.template, "lifecycle")["precondition"]]
    assert [gpu.value(c) for c in conditions] == [True, True]
    refused = {**gpu.names, "var.genie_sim_image": None, "var.shards_per_instance": 2}
    assert [evaluate(c, refused) for c in conditions] == [False, False]

    config = gpu.cloud_init()
    files = {f["path"]: f["content"] for f in config["write_files"]}
    assert "cos-extensions install gpu" in files["/etc/systemd/system/bp-gpu-driver.service"]
    genie = files["/etc/systemd/system/genie-sim.service"]
    assert GENIE_SIM_IMAGE in genie and "/dev/nvidia0" in genie
    assert "GENIE_SIM_GRPC_HOST=127.0.0.1" in genie  # Genie Sim's plaintext port stays local
    scenes = collector.locals["genie_sim_scene_dir"]
    assert worker["BP_GENIE_SIM_SCENE_DIR"] == scenes
    assert f"--volume {scenes}:{scenes}:ro" in genie
    service = files["/etc/systemd/system/bp-collector.service"]
    assert "Requires=genie-sim.service" in service
    assert f"--volume {scenes}:{scenes} " in service
    assert any("genie-sim.service" in step for step in config["runcmd"])


@pytest.mark.parametrize("backend", ["mujoco", "genie-sim"])
def test_every_variant_may_be_spot_and_its_worker_ends_cleanly_on_sigterm(
    backend: str, env: Folder, collector: Folder
) -> None:
    assert env.default("collector_spot") is True
    assert expression(env.modules["collector"]["spot"]) == "var.collector_spot"
    spot = variant(env, collector, backend, spot=True).scheduling
    assert spot == {
        "on_host_maintenance": "TERMINATE",
        "provisioning_model": "SPOT",
        "preemptible": True,
        # Compute Engine refuses a Spot VM that restarts itself; the group makes a new one.
        "automatic_restart": False,
        "instance_termination_action": "DELETE",
    }
    standard = variant(env, collector, backend, spot=False).scheduling
    assert standard["provisioning_model"] == "STANDARD" and standard["automatic_restart"]
    # A CPU VM live-migrates through host maintenance; a GPU VM cannot.
    assert standard["on_host_maintenance"] == ("MIGRATE" if backend == "mujoco" else "TERMINATE")

    # Preemption, scale-in or a rolling update stop the worker's unit: docker sends it SIGTERM
    # and gives it the grace to finish its episode and hand its shard back, inside a Spot VM's
    # 30 s notice.
    grace = collector.variables["shutdown_grace_seconds"]
    assert grace["default"] < 30 and "<= 28" in block(grace, "validation")["condition"]
    config = variant(env, collector, backend).cloud_init()
    files = {f["path"]: f["content"] for f in config["write_files"]}
    service = files["/etc/systemd/system/bp-collector.service"]
    assert f"docker stop --time {grace['default']} bp-collector" in service
    assert f"TimeoutStopSec={grace['default'] + 2}" in service
    assert "Wants=otel-collector.service" in service


@pytest.mark.parametrize("backend", ["mujoco", "genie-sim"])
def test_every_variant_runs_on_private_vms_that_nothing_can_reach(
    backend: str, env: Folder, collector: Folder
) -> None:
    chosen = variant(env, collector, backend)
    template = chosen.template
    assert "access_config" not in block(template, "network_interface"), "no public address"
    assert block(template, "shielded_instance_config")["enable_secure_boot"] is True
    assert template["metadata"]["block-project-ssh-keys"] == "true"
    # The VMs run as the collect stage's account (tests/deploy/test_terraform.py).
    account = block(template, "service_account")
    assert expression(account["email"]) == "var.service_account_email"
    # A worker pulls: it serves nothing, so no firewall rule, load balancer or DNS name admits
    # anyone to it (the network denies all ingress), and it holds no secret or key.
    for kind in (
        "google_compute_firewall",
        "google_compute_forwarding_rule",
        "google_compute_region_backend_service",
        "google_dns_record_set",
        "google_service_account_key",
    ):
        assert not collector.of_type(kind), kind
    assert not [k for k in collector.resources if k.startswith("google_secret_manager")]
    assert not [k for k in chosen.environment if "SECRET" in k]
