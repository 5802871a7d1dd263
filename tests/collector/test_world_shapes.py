"""Objects are simulated and drawn as authored: each shape its own geom of its true kind, size,
pose and colour; collision meshes as cached convex hulls; the same world in any up axis and
unit; and each object's segmentation mask where its geometry projects."""

from __future__ import annotations

import copy
import dataclasses
import logging
import sys
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import pytest
from bp_collector.demo_scenes import TABLE_TOP_Z, tabletop_scene
from bp_collector.mujoco.convex import ConvexDecomposer, ConvexDecompositionError, ConvexSettings
from bp_collector.mujoco.randomization import RandomizationRanges, draw_randomization
from bp_collector.mujoco.rendering import CameraRig
from bp_collector.mujoco.shapes import HIDDEN_GROUP
from bp_collector.mujoco.world import World, WorldOptions, build_world
from bp_export.scene.graph import build_scene_graph
from bp_export.scene.reconciliation import reconcile_scene
from bp_export.usd.scene import load_scene
from bp_scene_contract import read_scene_graph, read_task_config
from pxr import Gf, UsdGeom, UsdPhysics

from tests.textured_usd import textured_quad, write_quadrant_png
from tests.usd_authoring import WorldStage

Z = TABLE_TOP_Z
# A U-shaped bracket (two posts on a bar, 6 x 2 x 4 cm): concave, so it needs several hulls.
_U_OUTLINE = [(0.0, 0.0), (0.06, 0.0), (0.06, 0.04), (0.045, 0.04), (0.045, 0.01)]
_U_OUTLINE += [(0.015, 0.01), (0.015, 0.04), (0.0, 0.04)]


def _write(path: Path, up: str, metres_per_unit: float) -> None:
    """One tabletop scene authored in `up` and `metres_per_unit`: the same objects in the world."""
    authored = WorldStage(path, up, metres_per_unit)
    stage, at, body, k = authored.stage, authored.at, authored.body, authored.k

    def collide(prim: UsdGeom.Gprim, rgb: tuple[float, float, float]) -> None:
        prim.CreateDisplayColorAttr([rgb])
        UsdPhysics.CollisionAPI.Apply(prim.GetPrim())

    brick = UsdGeom.Cube.Define(stage, body("Brick", 0.62, -0.05, Z + 0.03) + "/Shape")
    brick.CreateSizeAttr(1.0)
    brick.AddScaleOp().Set(
        Gf.Vec3f(0.08 * k, 0.04 * k, 0.06 * k)
        if up == "Z"
        else Gf.Vec3f(0.08 * k, 0.06 * k, 0.04 * k)
    )
    collide(brick, (0.8, 0.1, 0.1))
    ball = UsdGeom.Sphere.Define(stage, body("Ball", 0.8, -0.3, Z + 0.03) + "/Shape")
    ball.CreateRadiusAttr(0.03 * k)
    collide(ball, (0.1, 0.7, 0.2))
    can = UsdGeom.Cylinder.Define(stage, body("Can", 0.9, 0.3, Z + 0.05) + "/Shape")
    can.CreateRadiusAttr(0.025 * k)
    can.CreateHeightAttr(0.1 * k)
    can.CreateAxisAttr("Y" if up == "Y" else "Z")
    collide(can, (0.9, 0.8, 0.1))
    pill = UsdGeom.Capsule.Define(stage, body("Pill", 0.95, -0.1, Z + 0.015) + "/Shape")
    pill.CreateRadiusAttr(0.015 * k)
    pill.CreateHeightAttr(0.05 * k)
    pill.CreateAxisAttr("X")
    collide(pill, (0.3, 0.3, 0.9))
    egg = UsdGeom.Sphere.Define(stage, body("Egg", 0.8, 0.1, Z + 0.02) + "/Shape")
    egg.CreateRadiusAttr(1.0)
    egg.AddScaleOp().Set(Gf.Vec3f(0.03 * k, 0.02 * k, 0.02 * k))
    collide(egg, (0.9, 0.9, 0.8))
    bracket = UsdGeom.Mesh.Define(stage, body("Bracket", 0.35, 0.3, Z) + "/Shape")
    ring = [(x - 0.03, -0.01, z) for x, z in _U_OUTLINE] + [
        (x - 0.03, 0.01, z) for x, z in _U_OUTLINE
    ]
    n = len(_U_OUTLINE)
    # Each side as three convex quads (a concave polygon would be fanned wrongly).
    front = [[0, 1, 4, 5], [1, 2, 3, 4], [0, 5, 6, 7]]
    faces = front + [[n + i for i in reversed(quad)] for quad in front]
    faces += [[i, n + i, n + (i + 1) % n, (i + 1) % n] for i in range(n)]
    bracket.CreatePointsAttr([at(*p) for p in ring])
    bracket.CreateFaceVertexCountsAttr([len(f) for f in faces])
    bracket.CreateFaceVertexIndicesAttr([i for f in faces for i in f])
    collide(bracket, (0.6, 0.4, 0.2))
    stage.GetRootLayer().Save()


def _graph_with(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The demo tabletop (table, cube, can, tasks) plus the authored objects of `path`."""
    scene = load_scene(str(path), "authored")
    authored = build_scene_graph(scene, reconcile_scene(scene, path))
    graph, config = tabletop_scene("franka_panda")
    graph = copy.deepcopy(graph)
    graph["nodes"] += [n.model_dump(mode="json") for n in authored.nodes]
    return graph, copy.deepcopy(config)


def _build(graph: dict[str, Any], config: dict[str, Any], cache: Path, **options: Any) -> World:
    g, c = read_scene_graph(graph), read_task_config(config)
    rand = draw_randomization(0, [], [], [], RandomizationRanges.none())
    convex = ConvexSettings(cache_dir=cache)
    task = c.task("pick_place_cube")
    return build_world(
        g, c.assignment("franka_panda"), task, WorldOptions(convex=convex, **options), rand
    )


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("convex")


@pytest.fixture(scope="module")
def z_up_m(tmp_path_factory: pytest.TempPathFactory, cache: Path) -> World:
    path = tmp_path_factory.mktemp("scenes") / "z_m.usda"
    _write(path, "Z", 1.0)
    return _build(*_graph_with(path), cache)


def _geoms(world: World, asset_id: str) -> list[dict[str, Any]]:
    """Each geom of a node as it stands in the world once compiled."""
    model = world.model
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, 0)
    mujoco.mj_forward(model, data)
    body = model.body(f"node/{asset_id}").id
    out = []
    for g in range(model.ngeom):
        if model.geom_bodyid[g] != body:
            continue
        out.append(
            {
                "type": int(model.geom_type[g]),
                "size": model.geom_size[g].copy(),
                "pos": data.geom_xpos[g].copy(),
                "rot": data.geom_xmat[g].reshape(3, 3).copy(),
                "rgba": model.geom_rgba[g].copy(),
                "group": int(model.geom_group[g]),
                "collides": bool(model.geom_contype[g] or model.geom_conaffinity[g]),
            }
        )
    return out


def test_each_authored_primitive_is_a_geom_of_its_kind_size_pose_and_colour(
    z_up_m: World,
) -> None:
    expected = {
        # asset id: (MuJoCo type, MuJoCo size, world centre, colour)
        "Brick": (mujoco.mjtGeom.mjGEOM_BOX, [0.04, 0.02, 0.03], [0.62, -0.05, Z + 0.03]),
        "Ball": (mujoco.mjtGeom.mjGEOM_SPHERE, [0.03, 0, 0], [0.8, -0.3, Z + 0.03]),
        "Can": (mujoco.mjtGeom.mjGEOM_CYLINDER, [0.025, 0.05, 0], [0.9, 0.3, Z + 0.05]),
        "Pill": (mujoco.mjtGeom.mjGEOM_CAPSULE, [0.015, 0.025, 0], [0.95, -0.1, Z + 0.015]),
        "Egg": (mujoco.mjtGeom.mjGEOM_ELLIPSOID, [0.03, 0.02, 0.02], [0.8, 0.1, Z + 0.02]),
    }
    for asset_id, (kind, size, centre) in expected.items():
        (geom,) = _geoms(z_up_m, asset_id)
        assert geom["type"] == kind, asset_id
        np.testing.assert_allclose(geom["size"], size, atol=1e-6, err_msg=asset_id)
        np.testing.assert_allclose(geom["pos"], centre, atol=2e-3, err_msg=asset_id)
        assert geom["collides"] and geom["group"] != HIDDEN_GROUP
    # The capsule lies along x, as authored; the box's sides are where they were.
    (pill,) = _geoms(z_up_m, "Pill")
    np.testing.assert_allclose(np.abs(pill["rot"][:, 2]), [1, 0, 0], atol=1e-6)
    (brick,) = _geoms(z_up_m, "Brick")
    np.testing.assert_allclose(np.abs(brick["rot"]) @ brick["size"], [0.04, 0.02, 0.03], atol=1e-6)
    # Colours are the authored displayColor (randomisation is off here).
    np.testing.assert_allclose(brick["rgba"], [0.8, 0.1, 0.1, 1.0], atol=1e-6)
    # The node's mass is the graph's (the default where the scene gives none), on its body.
    model = z_up_m.model
    assert model.body_mass[model.body("node/Brick").id] == pytest.approx(0.2)
    # Nodes without authored shapes keep their box: the demo cube.
    assert "cube" not in z_up_m.shape_builds
    assert model.geom_type[model.geom("node/cube/geom").id] == mujoco.mjtGeom.mjGEOM_BOX


def test_a_collision_mesh_collides_as_cached_convex_hulls_and_is_drawn_as_itself(
    z_up_m: World, cache: Path
) -> None:
    geoms = _geoms(z_up_m, "Bracket")
    hulls = [g for g in geoms if g["collides"]]
    drawn = [g for g in geoms if not g["collides"]]
    assert len(hulls) >= 2, "a U shape is not one convex piece"
    assert all(
        g["type"] == mujoco.mjtGeom.mjGEOM_MESH and g["group"] == HIDDEN_GROUP for g in hulls
    )
    assert len(drawn) == 1 and drawn[0]["group"] == 0
    # Together the hulls span the bracket, and no more: 6 x 2 x 4 cm.
    model = z_up_m.model
    points = np.concatenate(
        [_mesh_world_vertices(z_up_m, g) for g in range(model.ngeom) if _is_hull(z_up_m, g)]
    )
    np.testing.assert_allclose(points.max(0) - points.min(0), [0.06, 0.02, 0.04], atol=3e-3)
    # The bar's middle is open: no hull covers the point above the bar between the posts.
    gap = np.array([0.35, 0.3, Z + 0.03])
    assert not any(
        _inside_hull(_mesh_world_vertices(z_up_m, g), gap)
        for g in range(model.ngeom)
        if _is_hull(z_up_m, g)
    )
    build = z_up_m.shape_builds["Bracket"]
    assert build.hulls == len(hulls) and build.cache_hits == 0
    assert len(list(cache.glob("*.npz"))) == 1


def test_the_second_build_reads_the_hulls_from_the_cache(
    tmp_path: Path, z_up_m: World, cache: Path
) -> None:
    _write(tmp_path / "again.usda", "Z", 1.0)
    again = _build(*_graph_with(tmp_path / "again.usda"), cache)
    assert again.shape_builds["Bracket"].cache_hits == 1
    assert again.shape_builds["Bracket"].hulls == z_up_m.shape_builds["Bracket"].hulls
    assert len(list(cache.glob("*.npz"))) == 1


def _is_hull(world: World, g: int) -> bool:
    model = world.model
    return (
        model.geom_type[g] == mujoco.mjtGeom.mjGEOM_MESH
        and model.body(model.geom_bodyid[g]).name == "node/Bracket"
        and bool(model.geom_contype[g])
    )


def _mesh_world_vertices(world: World, g: int) -> np.ndarray:
    model = world.model
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, 0)
    mujoco.mj_forward(model, data)
    mesh = model.geom_dataid[g]
    start, count = model.mesh_vertadr[mesh], model.mesh_vertnum[mesh]
    local = model.mesh_vert[start : start + count]
    rot = data.geom_xmat[g].reshape(3, 3)
    return np.asarray(local @ rot.T + data.geom_xpos[g])


def _inside_hull(vertices: np.ndarray, point: np.ndarray) -> bool:
    """Inside the convex hull of `vertices`: not separable by any plane through three of them."""
    from itertools import combinations

    centre = vertices.mean(0)
    for a, b, c in combinations(range(len(vertices)), 3):
        normal = np.cross(vertices[b] - vertices[a], vertices[c] - vertices[a])
        if np.linalg.norm(normal) < 1e-12:
            continue
        sides = (vertices - vertices[a]) @ normal
        if sides.min() < -1e-9 and sides.max() > 1e-9:
            continue  # not a face plane
        outward = normal if np.dot(centre - vertices[a], normal) < 0 else -normal
        if np.dot(point - vertices[a], outward) > 1e-9:
            return False
    return True


def test_a_y_up_centimetre_scene_and_a_z_up_metre_scene_give_the_same_geoms(
    tmp_path: Path, z_up_m: World, cache: Path
) -> None:
    _write(tmp_path / "y_cm.usda", "Y", 0.01)
    y_up_cm = _build(*_graph_with(tmp_path / "y_cm.usda"), cache)
    for asset_id in ("Brick", "Ball", "Can", "Pill", "Egg", "Bracket"):
        a, b = _geoms(y_up_cm, asset_id), _geoms(z_up_m, asset_id)
        assert [g["type"] for g in a] == [g["type"] for g in b], asset_id
        for ga, gb in zip(a, b, strict=True):
            np.testing.assert_allclose(ga["size"], gb["size"], atol=1e-6, err_msg=asset_id)
            np.testing.assert_allclose(ga["pos"], gb["pos"], atol=1e-6, err_msg=asset_id)
            # The same solid: the extent along each world axis agrees.
            np.testing.assert_allclose(
                np.abs(ga["rot"]) @ ga["size"], np.abs(gb["rot"]) @ gb["size"], atol=1e-6
            )


def test_each_mask_covers_where_its_geometry_projects(z_up_m: World) -> None:
    width, height = 320, 240
    model = z_up_m.model
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, 0)
    mujoco.mj_forward(model, data)
    rig = CameraRig(z_up_m, width, height)
    try:
        seg = rig.capture(data, "overhead").segmentation
    finally:
        rig.close()
    cam = model.camera("cam/overhead").id
    ids = {name: i for i, name in z_up_m.entities.items()}
    for asset_id in ("Brick", "Ball", "Can"):
        ys, xs = np.nonzero(seg == ids[asset_id])
        assert len(xs) > 50, f"{asset_id} is not in view"
        (geom,) = _geoms(z_up_m, asset_id)
        u, v = _project(
            _surface_points(geom),
            data.cam_xpos[cam],
            data.cam_xmat[cam],
            float(model.cam_fovy[cam]),
            width,
            height,
        )
        # Pixel centres: a mask's edge pixel lies within a pixel of the projected outline.
        assert abs(xs.min() - u.min()) <= 3 and abs(xs.max() - u.max()) <= 3, asset_id
        assert abs(ys.min() - v.min()) <= 3 and abs(ys.max() - v.max()) <= 3, asset_id


def _surface_points(geom: dict[str, Any]) -> np.ndarray:
    """Points on the geom's surface, dense enough that their projection spans its outline."""
    a, b, c = geom["size"]
    kind = geom["type"]
    unit = np.random.default_rng(0).normal(size=(4000, 3))
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    if kind == mujoco.mjtGeom.mjGEOM_BOX:
        local = np.clip(unit * 2.0, -1.0, 1.0) * [a, b, c]
        corners = np.array([[x, y, z] for x in (-a, a) for y in (-b, b) for z in (-c, c)])
        local = np.concatenate([local, corners])
    elif kind == mujoco.mjtGeom.mjGEOM_SPHERE:
        local = unit * a
    else:  # an upright cylinder: its two rims
        angle = np.linspace(0, 2 * np.pi, 720)
        rim = np.stack([a * np.cos(angle), a * np.sin(angle)], axis=1)
        local = np.concatenate([np.c_[rim, np.full(720, -b)], np.c_[rim, np.full(720, b)]])
    return np.asarray(local @ geom["rot"].T + geom["pos"])


def _project(
    points: np.ndarray,
    cam_pos: np.ndarray,
    cam_mat: np.ndarray,
    fovy_deg: float,
    width: int,
    height: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Pinhole projection with the camera's intrinsics (from its vertical field of view) and
    extrinsics (MuJoCo cameras look along -z with +y up)."""
    rot = cam_mat.reshape(3, 3)
    local = (points - cam_pos) @ rot
    f = (height / 2) / np.tan(np.radians(fovy_deg) / 2)
    u = width / 2 + f * local[:, 0] / -local[:, 2] - 0.5
    v = height / 2 - f * local[:, 1] / -local[:, 2] - 0.5
    return u, v


def test_a_mesh_over_the_budget_collides_as_its_hull_with_a_note(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _write(tmp_path / "big.usda", "Z", 1.0)
    graph, config = _graph_with(tmp_path / "big.usda")
    g, c = read_scene_graph(graph), read_task_config(config)
    rand = draw_randomization(0, [], [], [], RandomizationRanges.none())
    options = WorldOptions(convex=ConvexSettings(cache_dir=tmp_path / "c", max_triangles=10))
    with caplog.at_level(logging.WARNING):
        world = build_world(
            g, c.assignment("franka_panda"), c.task("pick_place_cube"), options, rand
        )
    assert world.shape_builds["Bracket"].hulls == 1
    assert "over the budget" in caplog.text and "Bracket" in caplog.text
    assert not (tmp_path / "c").exists()  # nothing was decomposed, nothing cached


def test_without_coacd_a_mesh_is_a_typed_error_not_a_box(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "coacd", None)  # what Python does when it is not installed
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=float)
    faces = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    with pytest.raises(ConvexDecompositionError, match="coacd is not installed") as err:
        ConvexDecomposer(ConvexSettings(cache_dir=tmp_path)).decompose(vertices, faces, name="t")
    assert err.value.permanent


def _write_poster(path: Path) -> tuple[float, float, float]:
    """A 16 cm slab on the table with a textured quad on top (left half red, right half blue
    towards -y and green towards +y); the quad's world centre."""
    authored = WorldStage(path, "Z", 1.0)
    centre = (0.75, -0.05, Z + 0.005)
    body = authored.body("Poster", *centre)
    slab = UsdGeom.Cube.Define(authored.stage, body + "/Slab")
    slab.CreateSizeAttr(1.0)
    slab.AddScaleOp().Set(Gf.Vec3f(0.16, 0.16, 0.01))
    slab.CreateDisplayColorAttr([(0.5, 0.5, 0.5)])
    UsdPhysics.CollisionAPI.Apply(slab.GetPrim())
    top = 0.0055  # just above the slab, seen but not colliding
    corners = [(-0.08, -0.08, top), (0.08, -0.08, top), (0.08, 0.08, top), (-0.08, 0.08, top)]
    write_quadrant_png(path.parent / "poster.png", 64, 64)
    textured_quad(authored, body + "/Quad", corners, "./poster.png")
    authored.stage.GetRootLayer().Save()
    return (centre[0], centre[1], centre[2] + top)


def test_a_textured_mesh_is_drawn_with_its_texture_where_its_uv_puts_it(tmp_path: Path) -> None:
    x, y, z = _write_poster(tmp_path / "poster.usda")
    graph, config = _graph_with(tmp_path / "poster.usda")
    g, c = read_scene_graph(graph), read_task_config(config)
    quad = next(s for s in g.node("Poster").shapes if s.kind == "mesh")
    assert quad.texture is not None and not quad.collision
    dim = (0.5, 1.0, 1.0)  # the episode's colour scale for the poster: less red
    rand = draw_randomization(0, [], [], [], RandomizationRanges.none())
    rand = dataclasses.replace(rand, colour_scale={"Poster": dim})
    options = WorldOptions(convex=ConvexSettings(cache_dir=tmp_path / "convex"))
    world = build_world(g, c.assignment("franka_panda"), c.task("pick_place_cube"), options, rand)
    model = world.model
    # One texture, bound through a material whose colour is the scale on white.
    assert model.ntex >= 1 and model.mesh_texcoordnum.sum() > 0
    (drawn,) = [
        geom
        for geom in range(model.ngeom)
        if model.body(model.geom_bodyid[geom]).name == "node/Poster" and model.geom_matid[geom] >= 0
    ]
    material = model.geom_matid[drawn]
    assert model.mat_texid[material, mujoco.mjtTextureRole.mjTEXROLE_RGB] >= 0
    np.testing.assert_allclose(model.mat_rgba[material], [*dim, 1.0], atol=1e-6)

    width, height = 320, 240
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, 0)
    mujoco.mj_forward(model, data)
    rig = CameraRig(world, width, height)
    try:
        images = rig.capture(data, "overhead")
    finally:
        rig.close()
    cam = model.camera("cam/overhead").id
    spots = {
        "red": (x - 0.04, y, z),
        "blue": (x + 0.04, y - 0.04, z),
        "green": (x + 0.04, y + 0.04, z),
    }
    u, v = _project(
        np.array(list(spots.values())),
        data.cam_xpos[cam],
        data.cam_xmat[cam],
        float(model.cam_fovy[cam]),
        width,
        height,
    )
    poster = {name: i for i, name in world.entities.items()}["Poster"]
    for (name, _), col, row in zip(
        spots.items(), np.rint(u).astype(int), np.rint(v).astype(int), strict=True
    ):
        # The mean colour of a small patch around the spot, which is inside one colour's area.
        patch = images.rgb[row - 2 : row + 3, col - 2 : col + 3].reshape(-1, 3).astype(float)
        r, g_, b = patch.mean(0)
        seen = {"red": r, "green": g_, "blue": b}
        assert seen[name] > 40 and all(
            seen[name] > 2 * other for key, other in seen.items() if key != name
        ), f"{name} expected at ({col}, {row}), saw rgb {patch.mean(0).round()}"
        # Segmentation is unchanged by the texture: the spot is the poster's.
        assert (images.segmentation[row - 2 : row + 3, col - 2 : col + 3] == poster).all(), name
