"""Real USD files from other tools (../shared/fixtures/public-usd) behave as their README says:
positive scenes load with every physical object and correct support relations; negative ones
are a permanent error naming the asset that cannot be resolved."""

from __future__ import annotations

from pathlib import Path

import pytest
from bp_export.assets.asset_index import build_asset_index, enforce_licence_policy
from bp_export.scene.graph import build_scene_graph
from bp_export.scene.model import SceneModel
from bp_export.scene.reconciliation import reconcile_scene
from bp_export.scene_errors import UnresolvedAsset
from bp_export.usd.scene import load_scene
from bp_scene_contract import SceneGraph

FIXTURES = Path(__file__).parents[2].parent / "shared/fixtures/public-usd"


def _load(relative: str) -> tuple[SceneModel, SceneGraph]:
    path = FIXTURES / relative
    scene = load_scene(path, "fixture")
    return scene, build_scene_graph(scene, reconcile_scene(scene, path))


def test_fixtures_are_present() -> None:
    assert (FIXTURES / "README.md").is_file(), f"expected the shared fixtures at {FIXTURES}"


def test_bottle_falls_onto_the_crate() -> None:
    scene, graph = _load("newton_bottle_on_crate/newton/tests/assets/cube_cylinder.usda")
    assert {n.asset_id for n in graph.nodes} == {"Cylinder_dynamic", "Cube_static"}
    bottle, crate = graph.node("Cylinder_dynamic"), graph.node("Cube_static")
    # Isaac semantic instances with random names; the specific class beats "prop_general".
    assert (bottle.semantic, crate.semantic) == ("bottle", "crate")
    assert graph.relations("on") == {("Cylinder_dynamic", "Cube_static")}
    assert not bottle.is_static and crate.is_static
    assert bottle.sim_role == "manipulable_object" and "Graspable" in bottle.affordances
    assert bottle.properties.friction == pytest.approx(0.2)
    assert crate.properties.friction == pytest.approx(0.75)
    # The bottle is a tilted 10 x 20 cm cylinder; its own-axis size is exact.
    assert sorted(scene.object("Cylinder_dynamic").oriented_size) == pytest.approx(
        [0.1, 0.1, 0.2], abs=1e-6
    )
    assert [c.usd_path for c in scene.cameras] == ["/World/Camera"]
    assert [light.usd_path for light in scene.lights] == ["/Environment/defaultLight"]


def test_hinged_flap_with_drive_and_unregistered_limit_api() -> None:
    scene, graph = _load("newton_sensor_contact/newton/examples/assets/sensor_contact_scene.usda")
    assert {n.asset_id for n in graph.nodes} == {"Flap", "Cube", "Sphere", "Plate1", "Plate2"}
    assert any("Anchor has no geometry" in w for w in scene.warnings)
    hinge = graph.node("Flap").articulation
    assert hinge is not None and len(hinge.joints) == 1
    joint = hinge.joints[0]
    assert (joint.name, joint.type) == ("Hinge", "revolute")
    assert joint.axis == pytest.approx((1.0, 0.0, 0.0))
    assert joint.anchor == pytest.approx((0.0, 0.4, 2.0), abs=1e-6)
    fixed = [j for j in scene.joints if j.type == "fixed"]
    assert [(j.name, j.body0, j.body1) for j in fixed] == [("AnchorJoint", None, "/env/Anchor")]
    assert graph.relations("on") == {("Cube", "Flap"), ("Sphere", "Flap")}
    assert graph.node("Plate1").is_static and not graph.node("Cube").is_static


def test_centimetre_y_up_scene_with_missing_texture() -> None:
    scene, graph = _load(
        "ov_scratches_yup_cm/omni.replicator/snippets/surface_scratches/scratches_randomization.usda"
    )
    assert (scene.authored_up_axis, scene.authored_meters_per_unit) == ("Y", 0.01)
    semantics = {n.asset_id: n.semantic for n in graph.nodes}
    assert semantics == {"Plane": "floor", "RoundedCube2": "box"}
    box = graph.node("RoundedCube2")
    assert box.size == pytest.approx((0.2, 0.2, 0.2), abs=1e-3)
    assert graph.relations("on") == {("RoundedCube2", "Plane")}
    assert any("scratches_randomization.png" in w for w in scene.warnings)


def test_boxes_falling_onto_a_mirrored_base() -> None:
    _, graph = _load("physx_boxes_groundplane/ovphysx/tests/data/boxes_falling_on_groundplane.usda")
    cubes = {f"Cube{i}" for i in range(1, 12)}
    assert {n.asset_id for n in graph.nodes} == cubes | {"GroundPlane", "BigBase"}
    assert graph.relations("on") == {(cube, "BigBase") for cube in cubes}
    # BigBase has a negative X scale: still a valid orientation, read as a mirror on local X.
    assert graph.node("BigBase").pose.orientation == pytest.approx((1.0, 0.0, 0.0, 0.0))
    assert len(graph.relations("aligned")) == 10
    assert all(graph.node(c).sim_role == "interactive" for c in cubes)


def test_shapes_z_up_centimetres_without_default_prim() -> None:
    scene, graph = _load("sdf_shapes_zup_cm/test/usd/upAxisZ.usda")
    assert scene.default_prim is None
    shapes = {"box", "cylinder", "sphere", "capsule", "ellipsoid"}
    assert {n.asset_id for n in graph.nodes} == shapes | {"ground_plane"}
    # /box is a rigid body holding the rigid body /box/box_link: one object, both bodies.
    assert scene.object("box").physics.rigid_bodies == ("/box", "/box/box_link")
    assert scene.object("box").physics.mass_kg == pytest.approx(1.0)
    assert {s for s, t in graph.relations("on") if t == "ground_plane"} == shapes
    assert graph.node("ground_plane").size[0] == pytest.approx(1.0)


def test_shapes_tagged_y_up_honour_the_tag() -> None:
    # This file tags upAxis Y yet lays its ground out flat in X-Y. Honouring the tag, as USD
    # requires, stands that ground up as a wall; the box is beside it, not on it.
    scene, graph = _load("sdf_shapes_yup_m/test/usd/upAxisY.usda")
    assert scene.default_prim is None
    assert {n.asset_id for n in graph.nodes} == {"ground_plane", "box"}
    ground = graph.node("ground_plane")
    assert ground.size == pytest.approx((100.0, 0.25, 100.0))
    assert graph.relations("on") == set()
    assert graph.relations("adjacent") == {("box", "ground_plane")}


@pytest.mark.parametrize(
    ("relative", "asset"),
    [
        (
            "NEGATIVE_arena_maple_table_remote_payload/isaaclab_arena/assets/robolab/maple_table.usda",
            "https://omniverse-content-staging.s3-us-west-2.amazonaws.com/Assets/Isaac/6.0/Isaac/"
            "IsaacLab/Arena/assets/object_library/srl_robolab_assets/fixtures/table_maple.usd",
        ),
        (
            "NEGATIVE_i4h_table_abs_path/workflows/rheo/scripts/simulation/tasks/"
            "spread_tablecloth/assets/table_h2.usda",
            "/home/mxgu/Workspace/Omniverse/gmx/surgery-room-dev-internal/assets/Assets/Assets/"
            "Table256/Table256.usd",
        ),
    ],
)
def test_unresolvable_assets_are_permanent_errors_naming_them(relative: str, asset: str) -> None:
    with pytest.raises(UnresolvedAsset) as caught:
        load_scene(FIXTURES / relative, "fixture")
    assert caught.value.permanent
    assert caught.value.assets == [asset]
    assert asset in str(caught.value)


def test_fixture_licences_are_reported_not_blocking_outside_production() -> None:
    path = FIXTURES / "newton_bottle_on_crate/newton/tests/assets/cube_cylinder.usda"
    reconciled = reconcile_scene(load_scene(path, "fixture"), path)
    report = enforce_licence_policy(build_asset_index(reconciled), block_noncommercial=False)
    assert report.rejected.keys() == {"Cylinder_dynamic", "Cube_static"}
    assert not report.blocked
