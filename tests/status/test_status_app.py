"""The status page over the embedded backends: runs, reports, charts, dead letters, replay and
purge, behind its access token and CSRF tokens."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from bp_collector.shards.work import ShardInputsInvalid
from bp_common.bus.base import ATTR_REPLAY_COUNT
from bp_common.ledger import StageState
from bp_common.ledger.model import EmittedEvent
from bp_common.runtime.attempts import AttemptWriter
from bp_common.runtime.oidc import PushTokenVerifier
from bp_common.topology import STAGE_NAMES
from bp_ops.embedded import EmbeddedRun
from bp_ops.oidc_issuer import LocalIssuer
from bp_ops.status import Guard, create_app
from bp_ops.status.guard import CSRF_COOKIE, TOKEN_COOKIE
from bp_ops.status.overview import QUALITY_REPORT, quality_report_key
from fastapi.testclient import TestClient

from tests.status.conftest import REPORT_HTML, RecordedRuns

SAME_ORIGIN = {"sec-fetch-site": "same-origin", "origin": "http://testserver"}
TOKEN = "printed-at-start-0123456789abcdef"


def anonymous(recorded: RecordedRuns, **options: object) -> TestClient:
    """A browser that has not opened the printed address."""
    guard = options.pop("guard", Guard(token=TOKEN))
    return TestClient(create_app(recorded.sources(), guard, **options), follow_redirects=False)  # type: ignore[arg-type]


def client(recorded: RecordedRuns, **options: object) -> TestClient:
    """A browser that opened the printed address: it holds the token cookie."""
    http = anonymous(recorded, **options)
    http.cookies.set(TOKEN_COOKIE, TOKEN)
    return http


def csrf(http: TestClient) -> str:
    token = http.get("/api/csrf").json()["csrf_token"]
    assert isinstance(token, str) and http.cookies.get(CSRF_COOKIE)
    return token


def post_form(http: TestClient, path: str, fields: dict[str, str]) -> object:
    return http.post(path, data={**fields, "csrf_token": csrf(http)}, headers=SAME_ORIGIN)


def test_health_answers_without_touching_the_backends(recorded: RecordedRuns) -> None:
    assert anonymous(recorded).get("/healthz").json() == {"status": "ok"}


def test_without_the_token_nothing_is_served_and_nothing_changes(recorded: RecordedRuns) -> None:
    http = anonymous(recorded)
    page = http.get("/")
    assert page.status_code == 401 and "?token=" in page.text
    assert http.get("/api/runs").status_code == 401
    assert http.get("/charts").status_code == 401
    for path in ("/dead-letters/replay", "/dead-letters/purge"):
        refused = http.post(path, data={"stage": "export"}, headers=SAME_ORIGIN)
        assert refused.status_code == 401
    api = http.post("/api/dead-letters/replay", json={"stage": "export"})
    assert api.status_code == 401
    wrong = http.get("/", params={"token": "guessed"})
    assert wrong.status_code == 401
    assert recorded.waiting() == 1


def test_the_printed_address_becomes_a_cookie_and_leaves_the_address_bar(
    recorded: RecordedRuns,
) -> None:
    http = anonymous(recorded)
    landed = http.get("/dead-letters", params={"token": TOKEN, "stage": "export"})
    assert landed.status_code == 303
    assert landed.headers["location"] == "/dead-letters?stage=export"
    cookie = landed.headers["set-cookie"]
    assert f"{TOKEN_COOKIE}={TOKEN}" in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert http.get("/").status_code == 200


def test_api_clients_send_the_token_as_a_bearer_token(recorded: RecordedRuns) -> None:
    http = anonymous(recorded)
    runs = http.get("/api/runs", headers={"authorization": f"Bearer {TOKEN}"})
    assert runs.status_code == 200 and len(runs.json()) == 2


def test_a_state_change_needs_a_post_with_the_csrf_token(recorded: RecordedRuns) -> None:
    http = client(recorded)
    assert http.get("/dead-letters/replay").status_code == 405
    assert http.get("/dead-letters/purge").status_code == 405
    bare = http.post("/dead-letters/replay", data={"stage": "export"}, headers=SAME_ORIGIN)
    assert bare.status_code == 403 and "CSRF" in bare.text
    csrf(http)  # the browser has its CSRF cookie now, but the form below lacks the token
    forged = http.post(
        "/dead-letters/purge",
        data={"stage": "export", "csrf_token": "0" * 64},
        headers=SAME_ORIGIN,
    )
    assert forged.status_code == 403
    api = http.post("/api/dead-letters/purge", json={"stage": "export"})
    assert api.status_code == 403
    assert recorded.waiting() == 1
    # The token of another browser (another CSRF cookie) does not fit this one's cookie.
    other = client(recorded)
    stolen = csrf(other)
    csrf(http)
    mismatched = http.post(
        "/dead-letters/replay", data={"stage": "export", "csrf_token": stolen}, headers=SAME_ORIGIN
    )
    assert mismatched.status_code == 403
    assert recorded.waiting() == 1


def test_every_page_forbids_framing_and_foreign_scripts(recorded: RecordedRuns) -> None:
    page = client(recorded).get("/dead-letters")
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
    assert "script-src " not in policy  # only the confirm() attributes may run


def test_runs_list_shows_each_run_with_stage_states_timings_and_errors(
    recorded: RecordedRuns,
) -> None:
    page = client(recorded).get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    ok_row = text[text.index(f'data-run="{recorded.succeeded}"') :].split("</tr>")[0]
    bad_row = text[text.index(f'data-run="{recorded.dead_lettered}"') :].split("</tr>")[0]
    assert ok_row.count("s-succeeded") == 5  # the run and its four stages
    assert " s</span>" in ok_row  # a duration
    assert f"/runs/{recorded.succeeded}/reports/probe" in ok_row
    assert "s-failed" in bad_row and "InvalidInput: probe refuses this scene" in bad_row
    assert "/reports/" not in bad_row  # no report, no link


def test_runs_list_filters_by_scene(recorded: RecordedRuns) -> None:
    text = client(recorded).get("/", params={"scene": "broken"}).text
    assert recorded.dead_lettered in text and recorded.succeeded not in text


def test_run_detail_shows_stages_source_error_and_its_dead_letter(recorded: RecordedRuns) -> None:
    http = client(recorded)
    bad = http.get(f"/runs/{recorded.dead_lettered}").text
    assert "gs://local/scenes/broken/scene.usda#" in bad
    assert "<strong>InvalidInput</strong> (permanent): probe refuses this scene" in bad
    assert "Dead letters of this run" in bad
    ok = http.get(f"/runs/{recorded.succeeded}").text
    assert "id='stage-export'" in ok and "id='stage-submit'" in ok
    assert "objects=0" in ok  # the stage's counts
    assert "Dead letters of this run" not in ok
    assert http.get("/runs/run-00000000000000000000").status_code == 404


def test_quality_report_is_served_from_the_bucket_as_sandboxed_html(recorded: RecordedRuns) -> None:
    http = client(recorded)
    report = http.get(f"/runs/{recorded.succeeded}/reports/probe")
    assert report.status_code == 200
    assert report.headers["content-type"] == "text/html; charset=utf-8"
    assert report.headers["content-security-policy"].startswith("sandbox")
    assert report.content == REPORT_HTML
    assert http.get(f"/runs/{recorded.succeeded}/reports/franka").status_code == 404
    assert http.get(f"/runs/{recorded.dead_lettered}/reports/probe").status_code == 404
    assert http.get(f"/runs/{recorded.succeeded}/reports/..%2F..%2Fexport").status_code == 404


def test_json_api_lists_runs_with_their_reports(recorded: RecordedRuns) -> None:
    http = client(recorded)
    runs = {r["run_id"]: r for r in http.get("/api/runs").json()}
    assert runs[recorded.succeeded]["state"] == "succeeded"
    assert runs[recorded.succeeded]["quality_reports"] == [
        {"robot": "probe", "url": f"/runs/{recorded.succeeded}/reports/probe"}
    ]
    failed = runs[recorded.dead_lettered]
    assert failed["state"] == "failed" and failed["quality_reports"] == []
    assert failed["stages"]["export"]["error"]["type"] == "InvalidInput"
    one = http.get(f"/api/runs/{recorded.dead_lettered}").json()
    assert one["run_id"] == recorded.dead_lettered
    assert http.get("/api/runs/run-00000000000000000000").status_code == 404


def test_dead_letter_depth_per_subscription(recorded: RecordedRuns) -> None:
    depths = {d["stage"]: d for d in client(recorded).get("/api/dead-letters").json()}
    assert set(depths) == set(STAGE_NAMES)
    export = depths["export"]
    assert export["subscription"] == "bp-export-dead-letter" and export["waiting"] == 1
    (letter,) = export["letters"]
    assert letter["run_id"] == recorded.dead_lettered and letter["scene_id"] == "broken"
    assert letter["reason"].startswith("probe refuses this scene")
    assert all(d["waiting"] == 0 for s, d in depths.items() if s != "export")
    assert recorded.waiting() == 1  # looking leaves them in the queue


def test_replay_button_republishes_with_a_replay_count_like_bp_dlq_replay(
    recorded: RecordedRuns,
) -> None:
    http = client(recorded)
    page = http.get("/dead-letters").text
    assert "id='replay-export'" in page and "confirm(" in page

    assert "name='csrf_token'" in page
    answer = post_form(http, "/dead-letters/replay", {"stage": "export"})
    assert answer.status_code == 303  # type: ignore[attr-defined]
    location = answer.headers["location"]  # type: ignore[attr-defined]
    assert location == "/dead-letters?replayed=1&refused=0&stage=export"
    assert recorded.waiting() == 0
    after = http.get(location).text
    assert "Replayed 1 dead letter(s) of stage export" in after

    bus = recorded.pipeline.bus
    redelivered = bus.receive(["export"])
    assert redelivered is not None and redelivered.topic == "scene-uploads"
    assert redelivered.attributes[ATTR_REPLAY_COUNT] == "1"
    assert "bp_error" not in redelivered.attributes


def test_replay_refuses_a_message_replayed_too_often(recorded: RecordedRuns) -> None:
    http = client(recorded, max_replays=1)
    post_form(http, "/dead-letters/replay", {"stage": "export"})
    recorded.pipeline.drain(EmbeddedRun(scene_id="broken", run_id=recorded.dead_lettered))
    assert recorded.waiting() == 1  # the scene is still bad: dead-lettered again

    answer = post_form(http, "/dead-letters/replay", {"stage": "export"})
    location = answer.headers["location"]  # type: ignore[attr-defined]
    assert location == "/dead-letters?replayed=0&refused=1&stage=export"
    assert recorded.waiting() == 1
    assert "refused 1 already replayed 1 times" in http.get(location).text
    assert "id='replay-export'" not in http.get("/dead-letters").text


def test_api_replay_dry_run_changes_nothing(recorded: RecordedRuns) -> None:
    http = client(recorded)
    headers = {"x-csrf-token": csrf(http)}
    report = http.post(
        "/api/dead-letters/replay", json={"stage": "export", "dry_run": True}, headers=headers
    )
    assert report.status_code == 200
    body = report.json()
    assert body["dry_run"] is True and [x["run_id"] for x in body["replayed"]] == [
        recorded.dead_lettered
    ]
    assert recorded.waiting() == 1
    unknown = http.post("/api/dead-letters/replay", json={"stage": "nope"}, headers=headers)
    assert unknown.status_code == 404


def test_purge_deletes_a_stages_dead_letters_for_good(recorded: RecordedRuns) -> None:
    http = client(recorded)
    page = http.get("/dead-letters").text
    assert "id='purge-export'" in page and "id='purge-submit'" not in page  # nothing to purge
    answer = post_form(http, "/dead-letters/purge", {"stage": "export"})
    location = answer.headers["location"]  # type: ignore[attr-defined]
    assert location == "/dead-letters?purged=1&stage=export"
    assert "Purged 1 dead letter(s) of stage export" in http.get(location).text
    assert recorded.waiting() == 0
    assert recorded.pipeline.bus.receive(["export"]) is None  # deleted, not replayed


def test_a_replay_posted_from_another_site_is_refused(recorded: RecordedRuns) -> None:
    http = client(recorded)
    token = csrf(http)
    forged = http.post(
        "/dead-letters/replay",
        data={"stage": "export", "csrf_token": token},
        headers={"sec-fetch-site": "cross-site", "origin": "https://evil.example"},
    )
    assert forged.status_code == 403
    from_report = http.post(
        "/dead-letters/replay",
        data={"stage": "export", "csrf_token": token},
        headers={"origin": "null"},
    )
    assert from_report.status_code == 403
    assert recorded.waiting() == 1


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    issuer = LocalIssuer()
    yield issuer
    issuer.close()


def test_with_oidc_every_route_but_health_needs_a_token_of_the_allowed_account(
    recorded: RecordedRuns, issuer: LocalIssuer
) -> None:
    audience, account = "https://status.example", "ops@bp-prod.iam.gserviceaccount.com"
    verifier = PushTokenVerifier(
        audience=audience, service_account=account, certs_url=issuer.certs_url
    )
    http = anonymous(recorded, guard=Guard(verifier=verifier))
    assert http.get("/healthz").status_code == 200
    assert http.get("/").status_code == 401
    assert http.get("/api/dead-letters").status_code == 401
    stranger = issuer.token(audience=audience, email="someone@example.com")
    assert http.get("/", headers={"authorization": f"Bearer {stranger}"}).status_code == 403
    token = issuer.token(audience=audience, email=account)
    runs = http.get("/api/runs", headers={"authorization": f"Bearer {token}"})
    assert runs.status_code == 200 and len(runs.json()) == 2
    assert json.loads(runs.text)[0]["run_id"].startswith("run-")


def test_a_report_is_found_in_the_committed_attempt_else_in_the_latest_one(
    recorded: RecordedRuns,
) -> None:
    blobs = recorded.pipeline.ports.blobs
    run = recorded.pipeline.ports.ledger.get(recorded.succeeded)
    assert run is not None
    unit = f"runs/kitchen/{run.run_id}/lerobot/probe/"
    # the fixture's report: an attempt whose gates failed, nothing committed
    assert quality_report_key(blobs, run, "probe") == unit + "attempts/a01-probe/" + QUALITY_REPORT
    with AttemptWriter(blobs, unit, "a02-commit", "import_manifest.json") as attempt:
        attempt.write(QUALITY_REPORT, b"<!doctype html><title>committed</title>")
        attempt.commit({"robot": "probe"})
    assert quality_report_key(blobs, run, "probe") == unit + "attempts/a02-commit/" + QUALITY_REPORT
    page = client(recorded).get(f"/runs/{run.run_id}/reports/probe")
    assert page.content == b"<!doctype html><title>committed</title>"


def test_charts_count_what_the_ledger_and_the_queues_hold(recorded: RecordedRuns) -> None:
    # A third run whose collection fanned in and whose import has not started yet.
    ledger, waiting = recorded.pipeline.ports.ledger, "run-0000000000000000000f"
    event = EmittedEvent(topic="episodes-collected", data="{}", attributes={})
    for stage in ("export", "submit", "collect"):
        ledger.stage_started(waiting, "kitchen", stage, 1)
        ledger.stage_finished(waiting, "kitchen", stage, StageState.SUCCEEDED, emitted=event)
    http = client(recorded)
    view = http.get("/api/charts").json()
    stages = {s["stage"]: s for s in view["stages"]}
    assert view["runs_considered"] == 3
    assert sum(stages["export"]["finished"]) == 3 and sum(stages["export"]["failed"]) == 1
    assert sum(stages["submit"]["finished"]) == 2 and sum(stages["submit"]["failed"]) == 0
    assert stages["export"]["waiting"] is None  # export's queue is not in the ledger
    assert stages["import"]["waiting"] == 1  # collect handed on, import has not started
    assert stages["export"]["dead_letters"] == 1 and stages["submit"]["dead_letters"] == 0
    assert sum(view["dead_letters_per_hour"]) == 1
    assert stages["export"]["p50_s"] is not None
    page = http.get("/charts").text
    for chart in ("throughput-export", "latency", "backlog", "dead-letters"):
        assert f"id='{chart}'" in page
    row = page[page.index("id='load-import'") :].split("</tr>")[0]
    assert "<td class='num'>1</td>" in row  # one run waiting for import


def test_a_collecting_run_shows_its_shard_progress_and_why_a_shard_failed(
    recorded: RecordedRuns,
) -> None:
    ledger = recorded.pipeline.ports.ledger
    run_id = recorded.succeeded
    shards = ledger.shards
    shards.plan(run_id, "kitchen", {"probe.000-pick.00000": 5, "probe.000-pick.00005": 5})
    shards.complete(
        run_id, "probe.000-pick.00000", episodes=5, succeeded=4, manifest="shards/a.json"
    )
    shards.fail(run_id, "probe.000-pick.00005", ShardInputsInvalid("no such robot"))
    http = client(recorded)
    page = http.get(f"/runs/{run_id}").text
    fact = page[page.index("id='collection'") :].split("</dd>")[0]
    assert "shards 1/2 (1 failed), episodes 5/10" in fact
    assert "probe.000-pick.00005" in fact and "ShardInputsInvalid: no such robot" in fact
    document = http.get(f"/api/runs/{run_id}").json()["shards"]
    assert (document["shards_done"], document["episodes_total"]) == (1, 10)
    assert document["failed"] == {"probe.000-pick.00005": "ShardInputsInvalid: no such robot"}
    assert "shards" not in http.get(f"/api/runs/{recorded.dead_lettered}").json()
