"""Router versions in the store: retrain behind a gate, promote and roll back across
replicas, A/B split with a per-arm report. Real servers on port 0, the hashing embedder
(offline, fast), the CLI called in-process."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelrouter.cli import main as modelrouter_cli
from modelrouter.config import parse_config
from modelrouter.learning.embedders import HashingEmbedder
from modelrouter.learning.quality_model import QualityModel, train_quality_model
from modelrouter.testing import TEST_CONFIG
from modelrouter.v1 import router_pb2 as pb
from modelrouter.v1 import router_pb2_grpc

from .conftest import user
from .state_fixtures import POSTGRES_URL, drop_postgres_schema, require_postgres

pytest.importorskip("sklearn", reason="training needs scikit-learn (the 'learned' extra)")

MODELS = ("tiny", "small-coder", "large")
EMBEDDER = HashingEmbedder(64)
REFUSED = 3


def _easy(i: int) -> str:
    return f"easy friendly hello chat greeting about weather number {i}"


def _hard(i: int) -> str:
    return f"hard integral proof theorem derive bound lemma number {i}"


def _artifact(path: Path, *, easy_is_adequate: bool, n: int = 40, seed: int = 0) -> str:
    """A router trained on synthetic prompts: every model adequate on the easy prompts
    (or, flipped, on the hard ones only). Returns its version."""
    prompts = [_easy(1000 + seed * n + i) for i in range(n)] + [
        _hard(1000 + seed * n + i) for i in range(n)
    ]
    easy = np.array([1.0] * n + [0.0] * n)
    quality = np.repeat((easy if easy_is_adequate else 1.0 - easy)[:, None], len(MODELS), axis=1)
    cost = np.tile([1e-6, 5e-6, 3e-5], (2 * n, 1))
    model = train_quality_model(
        prompts,
        EMBEDDER.embed(prompts),
        quality,
        cost,
        MODELS,
        EMBEDDER.name,
        c=1.0,
        calibration=None,
    )
    model.save(path)
    return model.version


def _config_text(storage: str, artifact: Path, log_prompts: bool = True) -> str:
    return (
        TEST_CONFIG.replace('default_classifier = "rules"', 'default_classifier = "learned"')
        + storage.replace("[storage]\n", f"[storage]\nlog_prompts = {str(log_prompts).lower()}\n")
        + f'\n[classifiers.learned]\nartifact = "{artifact}"\n'
        + "\n[routers]\nreload_interval_s = 0.05\nresamples = 60\nmin_labelled = 20\n"
    )


def _sqlite_storage(tmp_path: Path) -> str:
    return f'[storage]\nhot = "sqlite"\nlog = "sqlite"\nsqlite_path = "{tmp_path / "state.db"}"\n'


async def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = await asyncio.to_thread(modelrouter_cli, list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


class Replica:
    def __init__(self, server: Any) -> None:
        self.server = server
        self.channel = __import__("grpc").aio.insecure_channel(f"127.0.0.1:{server.port}")
        self.stub = router_pb2_grpc.ModelRouterStub(self.channel)

    async def route(self, prompt: str, session: str | None = None) -> tuple[str, str]:
        """Route ``prompt``; returns (decision id, the router version the log recorded)."""
        request = pb.RouteRequest(messages=user(prompt))
        if session:
            request.session_id = session
        reply = await self.stub.Route(request)
        record = await self.server.state.decisions.get(reply.decision_id)
        return reply.decision_id, record.router_version

    async def wait_for_version(self, version: str, timeout: float = 15.0) -> None:
        """Poll (Route) until this replica's decisions are made by ``version``."""
        deadline = time.monotonic() + timeout
        seen = ""
        while time.monotonic() < deadline:
            _, seen = await self.route(f"which version now {uuid.uuid4()}")
            if seen == version:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"replica still serves {seen}, expected {version}")


async def _drive_feedback(replica: Replica, n: int) -> None:
    """n easy and n hard prompts; feedback says every model answers the easy ones only."""
    for i in range(n):
        for prompt, score in ((_easy(i), 1.0), (_hard(i), 0.0)):
            decision_id, _ = await replica.route(prompt)
            await replica.stub.SubmitFeedback(
                pb.SubmitFeedbackRequest(decision_id=decision_id, score=score, success=score > 0)
            )


async def test_retrain_from_logged_feedback_is_promoted_when_better_and_refused_when_worse(
    tmp_path: Path, modelrouter_server_factory: Callable[..., Awaitable[Any]], capsys
) -> None:
    # The file artefact serving at first has it backwards: it believes the hard prompts
    # are the ones every model gets right.
    serving = tmp_path / "serving.npz"
    wrong_version = _artifact(serving, easy_is_adequate=False)
    text = _config_text(_sqlite_storage(tmp_path), serving)
    config_file = tmp_path / "modelrouter.toml"
    config_file.write_text(text)
    replica = Replica(await modelrouter_server_factory(parse_config(text, source="test")))
    _, first = await replica.route(_easy(0))
    assert first == wrong_version
    await _drive_feedback(replica, 30)

    code, out, err = await _cli(capsys, "retrain", "--config", str(config_file), "--json")
    assert code == 0, out + err
    report = json.loads(out)
    assert report["promoted"] and report["serving"] == wrong_version
    brier = report["verdict"]["metrics"]["brier"]
    # Better beyond noise, not merely "not worse".
    assert brier["delta"]["high"] < 0 and brier["delta"]["estimate"] < -0.2, report["verdict"]
    better = report["candidate"]
    await replica.wait_for_version(better)

    # A base dataset that contradicts the traffic outweighs the logged feedback: the
    # candidate trained on it is worse than the (now good) serving router and is refused.
    flipped = tmp_path / "flipped.jsonl"
    with flipped.open("w") as handle:
        for i in range(300):
            for prompt, score in ((_easy(5000 + i), 0.0), (_hard(5000 + i), 1.0)):
                handle.write(
                    json.dumps(
                        {
                            "prompt": prompt,
                            "scores": dict.fromkeys(MODELS, score),
                            "costs": {"tiny": 1e-6, "small-coder": 5e-6, "large": 3e-5},
                        }
                    )
                    + "\n"
                )
    code, out, err = await _cli(
        capsys, "retrain", "--config", str(config_file), "--data", str(flipped)
    )
    assert code == REFUSED, out + err
    assert "verdict: refuse" in out and "BRIER worse beyond noise" in out
    assert f"against serving {better}" in out
    code, out, _ = await _cli(capsys, "routers", "list", "--config", str(config_file), "--json")
    listing = json.loads(out)
    assert listing["pointer"]["serving"] == better
    assert listing["pointer"]["history"] == [wrong_version]
    statuses = {v["version"]: v["status"] for v in listing["versions"]}
    assert statuses[better] == "promoted" and "refused" in statuses.values()
    refused = next(v for v in listing["versions"] if v["status"] == "refused")
    assert refused["metrics"]["gate"]["promote"] is False
    # The replica still serves the promoted version.
    _, version = await replica.route(_easy(1))
    assert version == better


async def test_retrain_without_logged_prompts_names_storage_log_prompts(
    tmp_path: Path, modelrouter_server_factory: Callable[..., Awaitable[Any]], capsys
) -> None:
    serving = tmp_path / "serving.npz"
    _artifact(serving, easy_is_adequate=True)
    text = _config_text(_sqlite_storage(tmp_path), serving, log_prompts=False)
    config_file = tmp_path / "modelrouter.toml"
    config_file.write_text(text)
    replica = Replica(await modelrouter_server_factory(parse_config(text, source="test")))
    await _drive_feedback(replica, 3)
    code, _, err = await _cli(capsys, "retrain", "--config", str(config_file))
    assert code == 2
    assert "storage.log_prompts = true" in err and "0 labelled prompt(s)" in err


@pytest.fixture(params=["sqlite", "postgres"])
async def shared_storage(request, tmp_path: Path):
    if request.param == "sqlite":
        yield _sqlite_storage(tmp_path)
        return
    await require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield (
        f'[storage]\nhot = "memory"\nlog = "postgres"\npostgres_url = "{POSTGRES_URL}"\n'
        f'postgres_schema = "{schema}"\n'
    )
    await drop_postgres_schema(schema)


async def test_promote_and_rollback_reach_a_second_replica_without_restart(
    tmp_path: Path,
    shared_storage: str,
    modelrouter_server_factory: Callable[..., Awaitable[Any]],
    capsys,
) -> None:
    first_file, second_file = tmp_path / "a.npz", tmp_path / "b.npz"
    first = _artifact(first_file, easy_is_adequate=True, seed=1)
    second = _artifact(second_file, easy_is_adequate=True, seed=2)
    text = _config_text(shared_storage, first_file)
    config_file = tmp_path / "modelrouter.toml"
    config_file.write_text(text)
    config = parse_config(text, source="test")
    one = Replica(await modelrouter_server_factory(config))
    two = Replica(await modelrouter_server_factory(config))

    code, out, err = await _cli(
        capsys, "routers", "add", str(first_file), "--promote", "--config", str(config_file)
    )
    assert code == 0, err
    code, out, err = await _cli(
        capsys, "routers", "add", str(second_file), "--config", str(config_file)
    )
    assert code == 0 and f"stored version {second}" in out
    code, out, err = await _cli(capsys, "routers", "promote", second, "--config", str(config_file))
    assert code == 0, err
    assert f"serving: {second}" in out and f"rollback goes to: {first}" in out
    await two.wait_for_version(second)
    await one.wait_for_version(second)

    code, out, err = await _cli(capsys, "routers", "rollback", "--config", str(config_file))
    assert code == 0 and f"serving: {first}" in out
    await two.wait_for_version(first)

    code, _, err = await _cli(capsys, "routers", "promote", "nope", "--config", str(config_file))
    assert code == 2
    assert "unknown router version 'nope'" in err and first in err and second in err
    code, _, err = await _cli(capsys, "routers", "rollback", "--config", str(config_file))
    assert code == 2 and "nothing to roll back to" in err


async def test_ab_split_routes_about_the_share_to_the_candidate_and_reports_each_arm(
    tmp_path: Path, modelrouter_server_factory: Callable[..., Awaitable[Any]], capsys
) -> None:
    serving_file, candidate_file = tmp_path / "a.npz", tmp_path / "b.npz"
    serving = _artifact(serving_file, easy_is_adequate=True, seed=1)
    candidate = _artifact(candidate_file, easy_is_adequate=True, seed=2)
    text = _config_text(_sqlite_storage(tmp_path), serving_file)
    config_file = tmp_path / "modelrouter.toml"
    config_file.write_text(text)
    replica = Replica(await modelrouter_server_factory(parse_config(text, source="test")))
    for path, extra in ((serving_file, ["--promote"]), (candidate_file, [])):
        code, _, err = await _cli(
            capsys, "routers", "add", str(path), *extra, "--config", str(config_file)
        )
        assert code == 0, err
    code, out, err = await _cli(
        capsys, "routers", "ab", candidate, "--share", "0.3", "--config", str(config_file)
    )
    assert code == 0 and "on 30.0% of requests" in out, err
    # Wait until the split is live: a prompt known to land in the candidate's arm.
    from modelrouter.learning.registry import arm_fraction
    from modelrouter.types import RoutingRequest

    probe = next(
        p
        for p in (f"probe {i}" for i in range(1000))
        if arm_fraction(RoutingRequest.from_prompt(p)) < 0.3
    )
    deadline = time.monotonic() + 15
    while (await replica.route(probe))[1] != candidate:
        assert time.monotonic() < deadline, "the A/B split never reached the replica"
        await asyncio.sleep(0.05)

    arms: dict[str, int] = {}
    for i in range(300):
        decision_id, version = await replica.route(_easy(i) if i % 2 else _hard(i))
        arms[version] = arms.get(version, 0) + 1
        if i < 40:
            await replica.stub.SubmitFeedback(
                pb.SubmitFeedbackRequest(decision_id=decision_id, score=1.0, success=True)
            )
    assert set(arms) == {serving, candidate}
    assert 0.2 < arms[candidate] / 300 < 0.4
    # A session stays on one arm.
    versions = {(await replica.route(f"turn {i}", session="s-1"))[1] for i in range(10)}
    assert len(versions) == 1

    # Shadow evaluation judged four of the candidate's answers, three adequate.
    from modelrouter.state.shadow import ShadowResult

    for i, adequate in enumerate((True, True, True, False)):
        await replica.server.state.shadow.record(
            ShadowResult(
                f"shadowed-{i}",
                "default",
                time.time(),
                "tiny",
                "large",
                "SIMPLE",
                "CHAT",
                float(adequate),
                1.0,
                adequate,
                0.9,
                1e-5,
                1e-6,
                router_version=candidate,
            )
        )
    await replica.server.state.decisions.flush()  # rows are group-committed
    code, out, _ = await _cli(capsys, "routers", "list", "--config", str(config_file), "--json")
    report = {a["version"]: a for a in json.loads(out)["arms"]}
    assert report[candidate]["decisions"] >= arms[candidate]
    assert report[serving]["decisions"] >= arms[serving]
    assert report[candidate]["feedback"] + report[serving]["feedback"] == 40
    assert all(arm["mean_score"] in (None, 1.0) for arm in report.values())
    assert report[candidate]["shadow_evaluations"] == 4
    assert report[candidate]["shadow_adequate_rate"] == 0.75
    assert report[serving]["shadow_evaluations"] == 0
    code, out, _ = await _cli(capsys, "routers", "list", "--config", str(config_file))
    assert f"~{candidate}" in out and f"*{serving}" in out


async def test_an_older_sqlite_decision_log_gains_the_router_version_column(tmp_path: Path) -> None:
    from modelrouter.state.sqlite import SqliteDecisionLog

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE decisions (decision_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, "
        "created_at REAL NOT NULL, kind TEXT NOT NULL, complexity TEXT NOT NULL, "
        "task_type TEXT NOT NULL, classifier TEXT NOT NULL, candidates TEXT NOT NULL, "
        "chosen_model TEXT NOT NULL, estimated_cost_usd REAL NOT NULL, reason TEXT NOT NULL, "
        "explored INTEGER NOT NULL, prompt TEXT, actual_cost_usd REAL, latency_ms REAL, "
        "outcome TEXT NOT NULL)"
    )
    conn.execute(
        "INSERT INTO decisions VALUES ('old', 't', 1, 'route', 'SIMPLE', 'CHAT', 'rules', '[]', "
        "'tiny', 0.0, 'r', 0, NULL, NULL, NULL, 'routed')"
    )
    conn.commit()
    conn.close()
    log = SqliteDecisionLog(str(path))
    await log.open()
    try:
        old = await log.get("old")
        assert old is not None and old.router_version == ""
    finally:
        await log.aclose()


def test_a_stored_artefact_round_trips_through_bytes(tmp_path: Path) -> None:
    version = _artifact(tmp_path / "a.npz", easy_is_adequate=True)
    model = QualityModel.load(tmp_path / "a.npz")
    again = QualityModel.from_bytes(model.to_bytes())
    assert again.version == version
    with pytest.raises(ValueError, match="stored artefact: not a modelrouter"):
        import io

        buffer = io.BytesIO()
        np.savez(buffer, x=np.zeros(1))
        QualityModel.from_bytes(buffer.getvalue())


async def test_a_memory_store_serves_promotes_and_reports_inside_one_server(
    tmp_path: Path, modelrouter_server_factory: Callable[..., Awaitable[Any]]
) -> None:
    from modelrouter.learning.registry import RouterVersion
    from modelrouter.state.routers import RouterStoreError

    first_file, second_file = tmp_path / "a.npz", tmp_path / "b.npz"
    first = _artifact(first_file, easy_is_adequate=True, seed=1)
    second = _artifact(second_file, easy_is_adequate=True, seed=2)
    storage = '[storage]\nhot = "memory"\nlog = "memory"\n'
    replica = Replica(
        await modelrouter_server_factory(parse_config(_config_text(storage, first_file), "test"))
    )
    store = replica.server.router_store
    model = QualityModel.load(second_file)
    await store.put(RouterVersion(second, time.time(), "stored", artifact=model.to_bytes()))
    with pytest.raises(RouterStoreError, match=f"unknown router version 'x'; stored: {second}"):
        await store.promote("x")
    with pytest.raises(RouterStoreError, match="share: expected a fraction"):
        await store.set_candidate(second, 1.5)
    await store.promote(second)
    await replica.wait_for_version(second)
    decision_id, _ = await replica.route(_easy(7))
    await replica.stub.SubmitFeedback(
        pb.SubmitFeedbackRequest(decision_id=decision_id, score=0.5, success=True)
    )
    arms = {a.version: a for a in await store.arms()}
    assert arms[second].feedback == 1 and arms[second].mean_score == 0.5
    assert arms[first].decisions >= 1  # the file artefact decided before the promote
    # Nothing served before the first promote, so there is nothing to roll back to.
    with pytest.raises(RouterStoreError, match="nothing to roll back to"):
        await store.rollback()


async def test_explain_names_the_router_version_that_decided(
    tmp_path: Path, modelrouter_server_factory: Callable[..., Awaitable[Any]], capsys
) -> None:
    serving = tmp_path / "serving.npz"
    version = _artifact(serving, easy_is_adequate=True)
    text = _config_text(_sqlite_storage(tmp_path), serving)
    config_file = tmp_path / "modelrouter.toml"
    config_file.write_text(text)
    replica = Replica(await modelrouter_server_factory(parse_config(text, source="test")))
    decision_id, recorded = await replica.route(_hard(1))
    assert recorded == version
    await replica.server.state.decisions.flush()
    code, out, _ = await _cli(capsys, "explain", decision_id, "--config", str(config_file))
    assert code == 0 and f"(router version {version})" in out


async def test_route_span_and_decisions_metric_carry_the_router_version(
    tmp_path: Path, modelrouter_server_factory: Callable[..., Awaitable[Any]]
) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from modelrouter.telemetry.metrics import views

    from .test_telemetry import Otel

    serving = tmp_path / "serving.npz"
    version = _artifact(serving, easy_is_adequate=True)
    storage = '[storage]\nhot = "memory"\nlog = "memory"\n'
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    telemetry = Otel(spans, reader, tracer_provider, MeterProvider([reader], views=views()))
    replica = Replica(
        await modelrouter_server_factory(
            parse_config(_config_text(storage, serving), "test"),
            tracer_provider=telemetry.tracer_provider,
            meter_provider=telemetry.meter_provider,
        )
    )
    await replica.route(_easy(3))
    assert telemetry.span("route").attributes["modelrouter.router.version"] == version
    points = telemetry.points("modelrouter.decisions")
    assert [p.attributes.get("modelrouter.router.version") for p in points] == [version]


def test_labelled_rows_keep_the_serving_models_scores_and_mask_the_rest() -> None:
    from modelrouter.learning.retrain import labelled_rows

    rows = labelled_rows(
        [
            {"prompt": "a", "scores": {"tiny": 1.0, "other": 0.0}, "costs": {"tiny": 1e-6}},
            # A shadow label adds the reference model's score and cost.
            {"prompt": "b", "scores": {"tiny": 0.0, "large": 1.0}, "costs": {"large": 3e-5}},
            {"prompt": "", "scores": {"tiny": 1.0}, "costs": {}},  # no prompt logged
            {"prompt": "c", "scores": {"other": 1.0}, "costs": {}},  # no model we route
        ],
        MODELS,
    )
    assert rows.prompts == ("a", "b")
    assert np.array_equal(np.isnan(rows.quality), [[False, True, True], [False, True, False]])
    assert rows.quality[1, 2] == 1.0 and np.isnan(rows.cost[1, 0]) and rows.cost[1, 2] == 3e-5


def test_the_gate_judges_aiq_only_on_prompts_where_every_model_is_scored() -> None:
    from modelrouter.evaluation.gate import compare_partial

    rng = np.random.default_rng(0)
    n = 40
    quality = (rng.random((n, 2)) < 0.5).astype(float)
    cost = np.tile([1e-6, 1e-5], (n, 1))
    good = (np.clip(quality * 0.8 + 0.1, 0, 1), cost)
    bad = (1.0 - good[0], cost)
    partial = quality.copy()
    partial[:, 1] = np.nan  # feedback on the cheap model only
    verdict = compare_partial(good, bad, partial, cost, resamples=50)
    assert "aiq" not in verdict.metrics and not verdict.promote
    assert "AIQ not judged" in "\n".join(verdict.lines())
    # Every model scored on a quarter of the prompts (shadow labels covering the catalog).
    partial[:10, 1] = quality[:10, 1]
    verdict = compare_partial(good, bad, partial, cost, resamples=50)
    assert verdict.aiq_prompts == 10 and verdict.metrics["aiq"].delta.estimate < 0
    assert compare_partial(bad, good, partial, cost, resamples=50).promote


async def test_the_retrain_lease_goes_to_one_holder_until_it_lapses(
    tmp_path: Path, shared_storage: str
) -> None:
    from modelrouter.state.routers import open_router_store

    config = parse_config(_config_text(shared_storage, tmp_path / "unused.npz"), "test")
    one, two = await open_router_store(config), await open_router_store(config)
    try:
        assert await one.acquire_lease("a", 0.3)
        assert not await two.acquire_lease("b", 0.3)
        assert await one.acquire_lease("a", 0.3)  # the holder renews
        await asyncio.sleep(0.4)
        assert await two.acquire_lease("b", 30)  # lapsed: another replica takes over
        assert not await one.acquire_lease("a", 30)
    finally:
        await one.aclose()
        await two.aclose()


async def test_the_server_retrains_on_its_schedule_on_one_replica_only(
    tmp_path: Path, modelrouter_server_factory: Callable[..., Awaitable[Any]]
) -> None:
    serving = tmp_path / "serving.npz"
    wrong_version = _artifact(serving, easy_is_adequate=False)
    text = _config_text(_sqlite_storage(tmp_path), serving).replace(
        "[routers]\n", "[routers]\nretrain_schedule_s = 2.0\n"
    )
    config = parse_config(text, source="test")
    one = Replica(await modelrouter_server_factory(config))
    two = Replica(await modelrouter_server_factory(config))
    await _drive_feedback(one, 30)
    store = one.server.router_store
    deadline = time.monotonic() + 60
    while (pointer := await store.pointer()).serving in ("", wrong_version):
        assert time.monotonic() < deadline, "no scheduled retrain promoted a candidate"
        await asyncio.sleep(0.1)
    await two.wait_for_version(pointer.serving)
    assert pointer.history == (wrong_version,)
    promoted = await store.get(pointer.serving)
    assert promoted is not None and promoted.status == "promoted"
    schedules = [one.server.retrain_schedule, two.server.retrain_schedule]
    assert f"(scheduled on {next(s.holder for s in schedules if s.runs)})" in promoted.notes
    assert sorted(bool(s.runs) for s in schedules) == [False, True]


async def test_the_commands_refuse_a_memory_store_naming_storage_log(
    tmp_path: Path, capsys
) -> None:
    config_file = tmp_path / "modelrouter.toml"
    storage = '[storage]\nhot = "memory"\nlog = "memory"\n'
    config_file.write_text(_config_text(storage, tmp_path / "unused.npz"))
    for argv in (["routers", "list"], ["retrain"]):
        code, _, err = await _cli(capsys, *argv, "--config", str(config_file))
        assert code == 2 and "storage.log is 'memory'" in err and "'sqlite'" in err
