"""The status page's HTML: rendered on the server, every value escaped, confirm() its one script."""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from bp_common.bus.base import DeadLetter
from bp_common.ledger import RunRecord, StageRecord
from bp_common.ledger.run_state import NOT_RUN_STAGE, RunState, run_state
from bp_common.topology import STAGE_NAMES

from bp_ops.status import charts
from bp_ops.status.guard import CSRF_FIELD
from bp_ops.status.overview import DeadLetterDepth, letter_reason, letter_run_id
from bp_ops.supervision import StackEvent, service_states

_CSS = """
:root { --ink:#1d2330; --muted:#5f6b7a; --line:#dde3ea; --bg:#f6f8fa; --accent:#1f5fbf; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
       color:var(--ink); background:var(--bg); }
header { display:flex; align-items:center; gap:1.5rem; padding:.7rem 1.5rem;
         background:#17202e; color:#fff; }
header .brand { font-weight:600; letter-spacing:.02em; }
header nav a { color:#c9d6ea; text-decoration:none; margin-right:1rem; }
header nav a.active { color:#fff; border-bottom:2px solid #6ea8fe; padding-bottom:2px; }
main { padding:1.2rem 1.5rem 3rem; max-width:1400px; }
h1 { font-size:1.3rem; margin:.2rem 0 1rem; }
h2 { font-size:1.05rem; margin:1.6rem 0 .6rem; }
a { color:var(--accent); }
table { border-collapse:collapse; width:100%; background:#fff; border:1px solid var(--line); }
th, td { text-align:left; padding:.45rem .6rem; border-bottom:1px solid var(--line);
         vertical-align:top; }
th { background:#eef2f6; font-weight:600; font-size:.8rem; text-transform:uppercase;
     letter-spacing:.03em; color:var(--muted); }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size:.85em; }
.muted { color:var(--muted); }
.badge { display:inline-block; padding:.05rem .5rem; border-radius:1rem; font-size:.78rem;
         font-weight:600; white-space:nowrap; }
.s-succeeded { background:#d9f2e1; color:#166534; }
.s-running { background:#dbe9ff; color:#1e4fa3; }
.s-retrying, .s-restarting { background:#fff1c9; color:#8a5a00; }
.s-failed { background:#fde0df; color:#a11d1a; }
.s-quality_failed { background:#ffe4cc; color:#9a3d00; }
.s-partially_published { background:#eaf5d0; color:#4d6b00; }
.s-skipped, .s-pending, .s-not_run, .s-stopped { background:#eceff3; color:#4b5563; }
.stage .meta { display:block; color:var(--muted); font-size:.78rem; }
.stage .err { display:block; color:#a11d1a; font-size:.78rem; max-width:22rem; }
.notice { background:#e8f1ff; border:1px solid #b7d0f7; padding:.6rem .8rem; margin-bottom:1rem; }
.notice.warn { background:#fff6db; border-color:#f0d58a; }
form.inline { display:inline; margin:0; }
button { font:inherit; padding:.3rem .8rem; border-radius:4px; border:1px solid #a11d1a;
         background:#c62828; color:#fff; cursor:pointer; }
button:disabled { background:#ccc; border-color:#bbb; cursor:default; }
.filter { margin-bottom:1rem; }
.filter input { font:inherit; padding:.25rem .4rem; }
.filter button { background:var(--accent); border-color:var(--accent); }
dl.facts { display:grid; grid-template-columns:max-content 1fr; gap:.25rem 1rem; margin:0; }
dl.facts dt { color:var(--muted); }
dl.facts dd { margin:0; }
button.quiet { background:#fff; color:#a11d1a; margin-left:.4rem; }
.charts { display:grid; grid-template-columns:repeat(auto-fill, minmax(580px, 1fr)); gap:1rem; }
figure.chart { margin:0; background:#fff; border:1px solid var(--line); padding:.6rem; }
figure.chart figcaption { font-weight:600; margin-bottom:.3rem; }
figure.chart .key { font-weight:400; color:var(--muted); margin-left:.6rem; font-size:.8rem; }
figure.chart .key i { display:inline-block; width:.7rem; height:.7rem; margin-right:.25rem; }
svg .axis { stroke:#9aa5b1; } svg .tick { font-size:10px; fill:#5f6b7a; }
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.1f} s"
    minutes, seconds = divmod(value, 60)
    return f"{int(minutes)} min {seconds:.0f} s"


def badge(state: str) -> str:
    return f'<span class="badge s-{_e(state)}">{_e(state.replace("_", " "))}</span>'


def page(title: str, body: str, *, active: str = "") -> str:
    links = [
        ("runs", "/", "Runs"),
        ("charts", "/charts", "Charts"),
        ("dead-letters", "/dead-letters", "Dead letters"),
        ("leaderboard", "/leaderboard", "Leaderboard"),
        ("stack", "/stack", "Stack"),
    ]
    nav = "".join(
        f'<a href="{href}" class="{"active" if key == active else ""}">{label}</a>'
        for key, href, label in links
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)} · BlueprintPipeline</title><style>{_CSS}</style></head><body>"
        f"<header><span class='brand'>BlueprintPipeline status</span><nav>{nav}</nav></header>"
        f"<main>{body}</main></body></html>"
    )


def _run_link(run_id: str) -> str:
    return f'<a class="mono" href="/runs/{quote(run_id)}">{_e(run_id)}</a>'


def _report_links(run: RunRecord, robots: list[str]) -> str:
    if not robots:
        return '<span class="muted">-</span>'
    return " ".join(
        f'<a href="/runs/{quote(run.run_id)}/reports/{quote(robot)}">{_e(robot)}</a>'
        for robot in robots
    )


def run_state_badge(state: RunState) -> str:
    """The run's state, and why when a stage decided it."""
    reason = f'<span class="err">{_e(state.describe())}</span>' if state.reason else ""
    return f"{badge(state.state.value)}{reason}"


def stage_cell(record: StageRecord | None, derived: str = NOT_RUN_STAGE) -> str:
    if record is None:
        if derived == NOT_RUN_STAGE:
            return '<td class="stage"><span class="muted">-</span></td>'
        return f'<td class="stage">{badge(derived)}</td>'
    meta = _seconds(record.duration_s)
    if record.duration_s is None and record.started_at is not None:
        meta = f"since {record.started_at:%H:%M:%S}"
    if record.attempts > 1:
        meta += f" · {record.attempts} attempts"
    error = ""
    if record.error is not None:
        message = record.error.message
        short = message if len(message) <= 90 else message[:87] + "..."
        error = (
            f'<span class="err" title="{_e(message)}">{_e(record.error.type)}: {_e(short)}</span>'
        )
    meta_span = f'<span class="meta">{meta}</span>'
    return f'<td class="stage">{badge(record.state.value)}{meta_span}{error}</td>'


def _stage_names(runs: list[RunRecord]) -> list[str]:
    extra = sorted({name for r in runs for name in r.stages} - set(STAGE_NAMES))
    return [*STAGE_NAMES, *extra]


def runs_page(
    runs: list[RunRecord], reports: dict[str, list[str]], *, scene: str | None, limit: int
) -> str:
    stages = _stage_names(runs)
    head = "".join(f"<th>{_e(s)}</th>" for s in stages)
    rows = []
    for run in runs:
        state = run_state(run)
        cells = "".join(
            stage_cell(run.stages.get(s), state.stages.get(s, NOT_RUN_STAGE)) for s in stages
        )
        rows.append(
            f'<tr data-run="{_e(run.run_id)}"><td>{_run_link(run.run_id)}</td>'
            f"<td>{_e(run.scene_id)}</td><td>{run_state_badge(state)}</td>{cells}"
            f"<td class='muted'>{_when(run.updated_at)}</td>"
            f"<td>{_report_links(run, reports.get(run.run_id, []))}</td></tr>"
        )
    table = (
        f"<table id='runs'><thead><tr><th>Run</th><th>Scene</th><th>State</th>{head}"
        f"<th>Updated (UTC)</th><th>Quality report</th></tr></thead><tbody>{''.join(rows)}"
        "</tbody></table>"
        if rows
        else "<p class='muted'>No runs recorded yet.</p>"
    )
    shown = f"{len(runs)} most recently updated run(s)"
    if scene:
        shown += f" of scene {_e(scene)}"
    body = (
        "<h1>Runs</h1>"
        "<form class='filter' method='get' action='/'>"
        f"<label>Scene <input name='scene' value='{_e(scene or '')}' size='24'></label> "
        f"<label>Show <input name='limit' value='{limit}' size='4'></label> "
        f"<button type='submit'>Filter</button> <span class='muted'>{shown}</span></form>"
        f"{table}"
    )
    return page("Runs", body, active="runs")


def collection_fact(shards: dict[str, Any]) -> str:
    """A run's collection progress (bp_ops.status.overview.shards_document) in one cell."""
    eta = f", ETA {shards['eta_s'] / 60:.0f} min" if shards["eta_s"] else ""
    line = (
        f"shards {shards['shards_done']}/{shards['shards_total']}"
        f" ({shards['shards_failed']} failed), episodes {shards['episodes_done']}/"
        f"{shards['episodes_total']}, {shards['episodes_per_hour']:.0f}/hour{eta}"
    )
    failed = "".join(
        f"<div class='err'>shard <span class='mono'>{_e(shard)}</span>: {_e(why)}</div>"
        for shard, why in shards["failed"].items()
    )
    return f"<span id='collection'>{_e(line)}</span>{failed}"


def run_page(
    run: RunRecord,
    reports: list[str],
    letters: list[DeadLetter],
    shards: dict[str, Any] | None = None,
) -> str:
    state = run_state(run)
    facts = [
        ("Run", f"<span class='mono'>{_e(run.run_id)}</span>"),
        ("Scene", f'<a href="/?{urlencode({"scene": run.scene_id})}">{_e(run.scene_id)}</a>'),
        ("State", run_state_badge(state)),
        ("Created", f"{_when(run.created_at)} UTC"),
        ("Updated", f"{_when(run.updated_at)} UTC"),
    ]
    if run.source is not None:
        source = f"gs://{run.source.bucket}/{run.source.object}#{run.source.generation}"
        facts.append(("Source", f"<span class='mono'>{_e(source)}</span>"))
    if shards is not None:
        facts.append(("Collection", collection_fact(shards)))
    facts.append(("Quality report", _report_links(run, reports)))
    if state.held_back:
        held = "".join(
            f"<div>{_report_links(run, [robot])}: {_e(why)}</div>"
            for robot, why in state.held_back.items()
        )
        facts.append(("Held back", held))
    facts.append(("Analytics", f'<a href="/runs/{quote(run.run_id)}/analytics">datasets</a>'))
    rows = []
    for name in _stage_names([run]):
        record = run.stages.get(name)
        if record is None:
            derived = state.stages.get(name, NOT_RUN_STAGE)
            rows.append(
                f"<tr id='stage-{_e(name)}'><td>{_e(name)}</td><td>{badge(derived)}</td>"
                "<td class='num'>-</td><td>-</td><td>-</td><td class='num'>-</td><td>-</td>"
                "<td>-</td></tr>"
            )
            continue
        counts = ", ".join(f"{_e(k)}={v:g}" for k, v in record.counts.items()) or "-"
        detail = []
        if record.note:
            detail.append(f"<div>note: {_e(record.note)}</div>")
        if record.error is not None:
            kind = "permanent" if record.error.permanent else "transient"
            context = ", ".join(f"{_e(k)}={_e(v)}" for k, v in record.error.context.items())
            detail.append(
                f"<div class='err'><strong>{_e(record.error.type)}</strong> ({kind}): "
                f"{_e(record.error.message)}</div>"
                + (f"<div class='muted mono'>{context}</div>" if context else "")
            )
        rows.append(
            f"<tr id='stage-{_e(name)}'><td>{_e(name)}</td><td>{badge(record.state.value)}</td>"
            f"<td class='num'>{record.attempts}</td><td>{_when(record.started_at)}</td>"
            f"<td>{_when(record.finished_at)}</td>"
            f"<td class='num'>{_seconds(record.duration_s)}</td>"
            f"<td>{counts}</td><td>{''.join(detail) or '-'}</td></tr>"
        )
    stages = (
        "<table id='stages'><thead><tr><th>Stage</th><th>State</th><th class='num'>Attempts</th>"
        "<th>Started (UTC)</th><th>Finished (UTC)</th><th class='num'>Took</th><th>Counts</th>"
        f"<th>Note / error</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    waiting = ""
    if letters:
        items = "".join(
            f"<tr><td>{_e(x.stage)}</td><td class='mono'>{_e(x.id)}</td>"
            f"<td class='num'>{x.replay_count}</td><td>{_e(letter_reason(x))}</td></tr>"
            for x in letters
        )
        waiting = (
            "<h2>Dead letters of this run</h2><table id='run-dead-letters'><thead><tr>"
            "<th>Stage</th><th>Message</th><th class='num'>Replays</th><th>Why</th></tr></thead>"
            f"<tbody>{items}</tbody></table>"
            "<p><a href='/dead-letters'>Replay from the dead letters page</a></p>"
        )
    body = (
        f"<h1>Run <span class='mono'>{_e(run.run_id)}</span></h1>"
        f"<dl class='facts'>{''.join(f'<dt>{k}</dt><dd>{v}</dd>' for k, v in facts)}</dl>"
        f"<h2>Stages</h2>{stages}{waiting}"
    )
    return page(f"Run {run.run_id}", body, active="runs")


def _letter_row(letter: DeadLetter) -> str:
    run_id = letter_run_id(letter)
    return (
        f"<tr><td class='mono'>{_e(letter.id)}</td><td>{_e(letter.scene_id or '-')}</td>"
        f"<td>{_run_link(run_id) if run_id else '-'}</td>"
        f"<td class='num'>{letter.replay_count}</td><td>{_e(letter_reason(letter))}</td>"
        f"<td class='muted'>{_when(letter.publish_time)}</td></tr>"
    )


def _post_button(action: str, stage: str, label: str, question: str, csrf: str, *, cls: str) -> str:
    """A POST form for one stage, asking first, carrying the page's CSRF token."""
    return (
        f"<form class='inline' method='post' action='{action}' "
        f'onsubmit="return confirm({_e(_js_string(question))})">'
        f"<input type='hidden' name='{CSRF_FIELD}' value='{_e(csrf)}'>"
        f"<input type='hidden' name='stage' value='{_e(stage)}'>"
        f"<button type='submit' class='{cls}' id='{action.rsplit('/', 1)[-1]}-{_e(stage)}'>"
        f"{_e(label)}</button></form>"
    )


def dead_letters_page(
    depths: list[DeadLetterDepth],
    *,
    max_replays: int,
    notice: str | None,
    csrf: str,
    warn: bool = False,
) -> str:
    rows = []
    for d in depths:
        count = f"{d.waiting}+" if d.capped else str(d.waiting)
        replayable = sum(1 for x in d.letters if x.replay_count < max_replays)
        question = (
            f"Replay {count} dead letter(s) of stage {d.stage} to {d.source_topic}? "
            f"Messages replayed {max_replays} times already stay."
        )
        purge_question = f"Delete {count} dead letter(s) of stage {d.stage} for good?"
        action = (
            _post_button(
                "/dead-letters/replay", d.stage, f"Replay {replayable}", question, csrf, cls=""
            )
            if replayable
            else "<span class='muted'>-</span>"
        )
        if d.waiting:
            action += _post_button(
                "/dead-letters/purge", d.stage, "Purge", purge_question, csrf, cls="quiet"
            )
        rows.append(
            f"<tr id='dlq-{_e(d.stage)}'><td>{_e(d.stage)}</td>"
            f"<td class='mono'>{_e(d.subscription)}</td><td class='mono'>{_e(d.source_topic)}</td>"
            f"<td class='num waiting'>{count}</td><td>{action}</td></tr>"
        )
    sections = []
    for d in depths:
        if not d.letters:
            continue
        sections.append(
            f"<h2>{_e(d.stage)}: {d.waiting}{'+' if d.capped else ''} waiting on "
            f"<span class='mono'>{_e(d.subscription)}</span></h2>"
            "<table><thead><tr><th>Message</th><th>Scene</th><th>Run</th>"
            f"<th class='num'>Replays</th><th>Why</th><th>Published (UTC)</th></tr></thead>"
            f"<tbody>{''.join(_letter_row(x) for x in d.letters)}</tbody></table>"
        )
    banner = ""
    if notice:
        banner = f"<div class='notice{' warn' if warn else ''}' id='notice'>{_e(notice)}</div>"
    body = (
        f"<h1>Dead letters</h1>{banner}"
        "<p class='muted'>Replay re-publishes each message to the topic its stage consumes, "
        f"with its replay count raised (<code>bp dlq replay</code>); a message replayed "
        f"{max_replays} times already is refused and stays.</p>"
        "<table id='dead-letters'><thead><tr><th>Stage</th><th>Subscription</th>"
        "<th>Replays to</th><th class='num'>Waiting</th><th></th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>{''.join(sections)}"
    )
    return page("Dead letters", body, active="dead-letters")


def stack_page(events: list[StackEvent] | None) -> str:
    """The local stack's services: restarts, the pid now, and every crash and restart."""
    if events is None:
        body = (
            "<h1>Stack</h1><p class='muted'>Not a local stack: deployed services are restarted "
            "by Cloud Run (see the dashboard).</p>"
        )
        return page("Stack", body, active="stack")
    rows = "".join(
        f"<tr id='service-{_e(name)}'><td>{_e(name)}</td>"
        f"<td>{badge('running' if state['running'] else 'restarting')}</td>"
        f"<td class='num'>{_e(state['pid'])}</td><td class='num restarts'>{_e(state['restarts'])}"
        f"</td><td>{_e(state['last_exit'] or '-')}</td></tr>"
        for name, state in service_states(events).items()
    )
    log = "".join(
        f"<tr class='ev-{_e(e.event)}'><td class='muted'>{_e(e.at)}</td><td>{_e(e.service)}</td>"
        f"<td>{_e(e.event)}</td><td>{_e(e.describe())}</td></tr>"
        for e in reversed(events)
    )
    body = (
        "<h1>Stack</h1><p class='muted'>bp up restarts a service that dies, with backoff, as "
        "Cloud Run restarts a crashed instance.</p>"
        "<table id='services'><thead><tr><th>Service</th><th>State</th><th class='num'>Pid</th>"
        f"<th class='num'>Restarts</th><th>Last exit</th></tr></thead><tbody>{rows}</tbody></table>"
        "<h2>Supervisor events</h2><table id='stack-events'><thead><tr><th>At (UTC)</th>"
        f"<th>Service</th><th>Event</th><th>What</th></tr></thead><tbody>{log}</tbody></table>"
    )
    return page("Stack", body, active="stack")


def _js_string(text: str) -> str:
    """A JavaScript string literal for an attribute (the caller HTML-escapes it)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def charts_page(view: charts.Overview) -> str:
    hours = charts.hour_labels(view.now, view.hours)
    throughput = "".join(
        charts.column_chart(
            f"throughput-{s.stage}",
            f"{s.stage}: stage runs finished per hour",
            [
                (
                    "finished",
                    charts.STAGE_COLOURS[s.stage],
                    [f - x for f, x in zip(s.finished, s.failed, strict=True)],
                ),
                ("failed", "#c62828", s.failed),
            ],
            hours,
        )
        for s in view.stages
    )
    names = [s.stage for s in view.stages]
    latency = charts.column_chart(
        "latency",
        "Stage time p50 / p95 (s)",
        [
            ("p50", "#6ea8fe", [s.p50_s or 0.0 for s in view.stages]),
            (
                "p95 above p50",
                "#1f5fbf",
                [max((s.p95_s or 0.0) - (s.p50_s or 0.0), 0.0) for s in view.stages],
            ),
        ],
        names,
        unit=" s",
    )
    backlog = charts.column_chart(
        "backlog",
        "Backlog: runs waiting for a stage, and in it",
        [
            ("waiting", "#f0a202", [float(s.waiting or 0) for s in view.stages]),
            ("in flight", "#1f5fbf", [float(s.in_flight) for s in view.stages]),
        ],
        names,
    )
    letters = charts.column_chart(
        "dead-letters",
        "Dead letters waiting per subscription",
        [("waiting", "#c62828", [float(s.dead_letters or 0) for s in view.stages])],
        [f"bp-{s.stage}-dead-letter" for s in view.stages],
    )
    arrivals = charts.column_chart(
        "dead-letter-arrivals",
        "Dead letters waiting, by the hour they arrived",
        [("dead letters", "#c62828", [float(n) for n in view.dead_letters_per_hour])],
        hours,
    )
    rows = "".join(
        f"<tr id='load-{_e(s.stage)}'><td>{_e(s.stage)}</td><td class='num'>{sum(s.finished)}</td>"
        f"<td class='num'>{sum(s.failed)}</td><td class='num'>{charts.seconds(s.p50_s)}</td>"
        f"<td class='num'>{charts.seconds(s.p95_s)}</td>"
        f"<td class='num'>{'-' if s.waiting is None else s.waiting}</td>"
        f"<td class='num'>{s.in_flight}</td>"
        f"<td class='num'>{'-' if s.dead_letters is None else s.dead_letters}"
        f"{'+' if s.dead_letters_capped else ''}</td></tr>"
        for s in view.stages
    )
    table = (
        "<table id='load'><thead><tr><th>Stage</th><th class='num'>Finished</th>"
        "<th class='num'>Failed</th><th class='num'>p50</th><th class='num'>p95</th>"
        "<th class='num'>Waiting</th><th class='num'>In flight</th>"
        f"<th class='num'>Dead letters</th></tr></thead><tbody>{rows}</tbody></table>"
    )
    body = (
        "<h1>Charts</h1>"
        f"<p class='muted'>The last {view.hours} hours of the {view.runs} most recently updated "
        "run(s) in the ledger, and the dead letters waiting now. Export's queue is not in the "
        "ledger, so its waiting count is unknown here; the cloud dashboard has every "
        "subscription's backlog.</p>"
        f"<p id='run-latency'>Runs published: {view.published}; from first record to published "
        f"p50 {charts.seconds(view.run_p50_s)}, p95 {charts.seconds(view.run_p95_s)}.</p>"
        f"{table}<h2>Throughput</h2><div class='charts'>{throughput}</div>"
        f"<h2>Latency, backlog, dead letters</h2><div class='charts'>{latency}{backlog}"
        f"{letters}{arrivals}</div>"
    )
    return page("Charts", body, active="charts")


def refused_page(title: str, message: str) -> str:
    return page(title, f"<h1>{_e(title)}</h1><p>{_e(message)}</p>")


def not_found_page(message: str) -> str:
    return page("Not found", f"<h1>Not found</h1><p>{_e(message)}</p><p><a href='/'>Runs</a></p>")


def _rate(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) else "-"


def analytics_panel(panel: dict[str, Any]) -> str:
    """One dataset's analytics: per-task measures, coverage, language, learnability."""
    rows = "".join(
        f"<tr><td>{_e(t['task'])}</td><td class='num'>{_e(t['episodes'])}</td>"
        f"<td class='num'>{_rate(t['success_rate'])}</td>"
        f"<td class='num'>{_rate(t['carry_optimality'])}</td>"
        f"<td class='num'>{_rate(t['time_to_success_s'])}</td>"
        f"<td class='num'>{_rate(t['idle_time_s'])}</td></tr>"
        for t in panel["tasks"]
    )
    learned = panel["learnability"]
    learnability = (
        f"{learned['successes']}/{learned['evaluations']} held-out runs succeed after training "
        f"on {learned['training_episodes']} episodes ({_e(learned.get('policy', ''))})"
        if learned
        else "not checked (bp learnability)"
    )
    facts = [
        ("Episodes", f"{_e(panel['episodes'].get('in_dataset', '-'))} in the dataset"),
        ("Diversity score", _rate(panel["diversity"])),
        ("Instructions", _e(panel["instructions"] if panel["instructions"] is not None else "-")),
        ("Contact forces", _e(panel["contact_feature"] or "not recorded")),
        ("Only some robots attempt or do", _e(", ".join(panel["only_some_robots"]) or "-")),
        ("Learnability", learnability),
    ]
    return (
        f"<section class='panel' id='analytics-{_e(panel['robot'])}'>"
        f"<h2>{_e(panel['robot'])} <a href='{_e(panel['page'])}'>analytics page</a></h2>"
        f"<dl class='facts'>{''.join(f'<dt>{k}</dt><dd>{v}</dd>' for k, v in facts)}</dl>"
        "<table><thead><tr><th>Task</th><th class='num'>Episodes</th><th class='num'>Success</th>"
        "<th class='num'>Carry optimality</th><th class='num'>Time to success (s)</th>"
        f"<th class='num'>Idle (s)</th></tr></thead><tbody>{rows}</tbody></table></section>"
    )


def analytics_page(run: RunRecord, panels: list[dict[str, Any]]) -> str:
    body = f"<h1>Dataset analytics of run {_run_link(run.run_id)}</h1>" + (
        "".join(analytics_panel(p) for p in panels) or "<p class='muted'>No analytics yet.</p>"
    )
    return page(f"Analytics {run.run_id}", body, active="runs")


def leaderboard_page(rows: list[dict[str, Any]]) -> str:
    items = "".join(
        f"<tr><td class='num'>{rank}</td><td>{_e(r['scene_id'])}</td>"
        f"<td>{_run_link(r['run_id'])}</td><td>{_e(r['robot'])}</td>"
        f"<td class='num'>{_rate(r['success_rate'])}</td>"
        f"<td class='num'>{_e(r['successes'])}/{_e(r['evaluations'])}</td>"
        f"<td class='num'>{_e(r['training_episodes'])}</td>"
        f"<td>{_e(', '.join(t for t in r['tasks'] if t))}</td></tr>"
        for rank, r in enumerate(rows, start=1)
    )
    table = (
        "<table id='leaderboard'><thead><tr><th class='num'>#</th><th>Scene</th><th>Run</th>"
        "<th>Robot</th><th class='num'>Learnability</th><th class='num'>Held-out runs</th>"
        "<th class='num'>Training episodes</th><th>Tasks</th></tr></thead>"
        f"<tbody>{items}</tbody></table>"
        if rows
        else "<p class='muted'>No learnability results yet: run <code>bp learnability</code>.</p>"
    )
    body = (
        "<h1>Policy leaderboard</h1><p class='muted'>A behaviour-cloning policy trained on each "
        "dataset, run in simulation on seeds no demonstration used: the share of runs that "
        f"succeed, next to how many episodes it learned from.</p>{table}"
    )
    return page("Leaderboard", body, active="leaderboard")
