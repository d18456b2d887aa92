"""Building and running the gRPC server.

``create_server`` builds a started server (tests call it with ``port=0``); ``serve`` runs
one until SIGTERM or SIGINT, then stops gracefully: health turns NOT_SERVING first so
load balancers drain it, and in-flight calls get ``grace_period_s`` to finish.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

from . import eventloop
from .base import PluginContext
from .catalog import Catalog
from .config import BudgetsConfig, Config, load_config
from .errors import ConfigError
from .execution import InMemoryCircuitBreaker
from .learning.registry import RouterRegistry, VersionedClassifier
from .pipeline import Pipeline
from .pipeline.classify import Classify
from .pipeline.execute import Executor
from .pipeline.record import Record
from .pipeline.select import Select
from .pipeline.validate import Validate
from .plugins import PluginRegistry, load_plugins
from .retraining import RetrainSchedule
from .security import Authenticator, RateLimiter, server_credentials
from .servicer import ModelRouterServicer, add_to_server
from .shadow import ShadowEvaluator
from .state import StateServices, open_state
from .state.budgets import Budgets
from .state.routers import RouterStore, open_router_store
from .telemetry import Providers, Telemetry, build_providers
from .telemetry.attempts import AttemptTelemetry
from .telemetry.rpc import RpcTelemetry
from .v1 import router_pb2

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from .http import HttpServer

log = logging.getLogger(__name__)

SERVICE_NAME = router_pb2.DESCRIPTOR.services_by_name["ModelRouter"].full_name
REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"
_LOOPBACK = ("127.0.0.1", "::1", "localhost", "[::1]")


@dataclass
class ModelRouterServer:
    """A started server and the services behind it (built once, by ``create_server``)."""

    grpc_server: grpc.aio.Server
    port: int
    config: Config
    registry: PluginRegistry
    catalog: Catalog
    state: StateServices
    telemetry: Telemetry
    pipeline: Pipeline
    health: health.aio.HealthServicer
    #: Shadow evaluation (``[shadow]``): live quality figures in ``shadow.stats``.
    shadow: ShadowEvaluator
    #: Exporters the server built from its config (flushed and closed by ``stop``).
    telemetry_providers: Providers | None = None
    #: The OpenAI-compatible HTTP face and dashboard (``None``: off); ``http.port`` is bound.
    http: HttpServer | None = None
    #: Router versions in the store and the poller handing them to the learned classifier.
    router_store: RouterStore | None = None
    routers: RouterRegistry | None = None
    #: ``[routers] retrain_schedule_s``: retrains run by this server (``None``: off).
    retrain_schedule: RetrainSchedule | None = None

    async def stop(self, grace: float | None = None) -> None:
        """Report NOT_SERVING, let in-flight calls finish, then release providers."""
        await self.health.enter_graceful_shutdown()
        grace_period = self.config.server.grace_period_s if grace is None else grace
        # ---- HTTP face (issue 13): drained alongside gRPC.
        if self.http is not None:
            await asyncio.gather(self.http.stop(grace_period), self.grpc_server.stop(grace_period))
        else:
            await self.grpc_server.stop(grace_period)
        # ---- end HTTP face
        # Evaluations still running are cut short (and their spend settled) before the
        # providers and the stores they use close.
        await self.shadow.aclose()
        await self.catalog.aclose()
        if self.retrain_schedule is not None:
            await self.retrain_schedule.aclose()
        if self.routers is not None:
            await self.routers.aclose()
        if self.router_store is not None:
            await self.router_store.aclose()
        if self.telemetry_providers is not None:
            # Flushing exports blocks on the network: keep the event loop free meanwhile.
            await asyncio.to_thread(self.telemetry_providers.shutdown)
        await self.state.aclose()

    async def wait_for_termination(self) -> None:
        await self.grpc_server.wait_for_termination()


async def create_server(
    config: Config,
    *,
    host: str | None = None,
    port: int | None = None,
    plugins: Iterable[object] = (),
    environ: Mapping[str, str] | None = None,
    reuse_port: bool = False,
    insecure: bool = False,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    http_port: int | None = None,
) -> ModelRouterServer:
    """Build every service once, wire the pipeline, and start serving on ``host:port``.

    ``port=0`` picks a free port (read it from the result). ``plugins`` adds plugin
    objects on top of the installed entry points; ``environ`` replaces the process
    environment for reading API keys and ``OTEL_*`` variables. ``tracer_provider`` and
    ``meter_provider`` replace the exporters ``[telemetry]`` would build (tests pass
    in-memory ones).
    ``http_port`` overrides ``[http] port`` for the OpenAI-compatible HTTP face and the
    dashboard: ``None`` takes the configured one, 0 turns the face off, -1 picks a free
    port (read it from ``result.http.port``).
    ``insecure`` (``serve --insecure``) accepts unauthenticated callers on a non-loopback
    address, like ``[auth] allow_unauthenticated``.
    """
    host = host or config.server.host
    authenticator = Authenticator(config.state.auth)
    credentials = server_credentials(config.state.auth)
    if not authenticator.enabled and host not in _LOOPBACK:
        if not (config.state.auth.allow_unauthenticated or insecure):
            # Anyone who can reach the port would spend the operator's provider keys.
            raise ConfigError(
                f"{config.source}: auth.enabled is false but the server would listen on "
                f"{host!r}, reachable from other machines; enable [auth] with API keys, "
                "listen on 127.0.0.1, or set auth.allow_unauthenticated = true "
                "(serve --insecure) to accept anyone"
            )
        log.warning("auth is disabled on a non-loopback address: every caller is tenant 'default'")

    # Plugins and the catalog.
    context = PluginContext(config.classifiers)
    registry = load_plugins(plugins, strict=config.server.strict_plugins, context=context)
    if config.routing.default_classifier not in registry.classifiers:
        loaded = ", ".join(sorted(registry.classifiers)) or "none"
        raise ConfigError(
            f"{config.source}: routing.default_classifier: {config.routing.default_classifier!r} "
            f"is not a loaded classifier (loaded: {loaded})"
        )
    catalog = Catalog(config, registry.provider_types, environ)
    shadow_models = {
        f"shadow.{key}": model
        for key, model in (
            ("reference_model", config.shadow.reference_model),
            ("judge_model", config.shadow.judge_model),
        )
        if model is not None
    }
    for key, model in {**context.required_models, **shadow_models}.items():
        if model not in catalog.models:
            raise ConfigError(
                f"{config.source}: {key}: expected a catalog model "
                f"({', '.join(catalog.models)}), got {model!r}"
            )
    context.bind(catalog.resolve, catalog.get)

    # State and telemetry.
    state = await open_state(config)
    state.maintenance.start()
    built = build_providers(config.telemetry, environ)
    telemetry = Telemetry(
        tracer_provider or built.tracer_provider,
        meter_provider or built.meter_provider,
        capture_content=built.settings.capture_content,
    )
    execution = config.execution
    # Shared by every replica when [storage] hot = "redis"; else kept in this process.
    breaker = await state.circuit_breaker(execution) or InMemoryCircuitBreaker(
        execution.circuit_failure_threshold, execution.circuit_cooldown_s
    )
    # Selection and ListModels see the breaker too: a cooling model is skipped and listed
    # as unavailable with the reason.
    catalog.breaker = breaker
    # Router versions: every replica on the store follows promote, rollback and A/B changes.
    router_store = await open_router_store(config, state.decisions)
    routers = RouterRegistry(
        router_store,
        [c for c in registry.classifiers.values() if isinstance(c, VersionedClassifier)],
        config.routers.reload_interval_s,
    )
    if routers.targets:
        try:
            await routers.refresh()  # serve the store's version from the first request
        except Exception:
            log.exception("reading the router versions failed; the file artefact serves")
        routers.start()
    retrain_schedule = None
    if config.routers.retrain_schedule_s > 0:
        retrain_schedule = RetrainSchedule(config, state, router_store)
        retrain_schedule.start()

    shadow = ShadowEvaluator(
        config.shadow,
        catalog,
        state.budgets,
        # The tenants' shadow line: its own counters in the same store, capped per window.
        Budgets(
            BudgetsConfig(default=config.shadow.budget),
            state.hot,
            max_in_flight_per_tenant=0,
            request_timeout_s=config.shadow.timeout_s,
        ),
        state.shadow,
        telemetry,
        log_prompts=config.state.storage.log_prompts,
    )

    # The pipeline, stage by stage.
    pipeline = Pipeline(
        validate=Validate(
            classifiers=registry.classifiers, models=catalog.models, providers=config.providers
        ),
        classify=Classify(registry.classifiers, config.routing.default_classifier, telemetry),
        select=Select(catalog, config.routing, state),
        executor=Executor(catalog, execution, breaker),
        budgets=state.budgets,
        record=Record(
            telemetry,
            AttemptTelemetry(telemetry, catalog),
            state.decisions,
            state.hot,
            state.budgets,
            log_prompts=config.state.storage.log_prompts,
            session_ttl_s=config.routing.session_ttl_s,
        ),
        shadow=shadow,
        telemetry=telemetry,
    )

    limits = config.server
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", limits.max_message_bytes),
            ("grpc.max_send_message_length", limits.max_message_bytes),
            ("grpc.max_concurrent_streams", limits.max_concurrent_streams_per_connection),
            # Keepalive enforcement: a client pinging more often than this is disconnected
            # (GOAWAY too_many_pings), so idle connections cannot be kept busy for free.
            (
                "grpc.http2.min_ping_interval_without_data_ms",
                int(limits.keepalive_min_time_s * 1000),
            ),
            ("grpc.http2.max_ping_strikes", 2),
            # Lets `serve --workers N` bind N processes to one port (Linux, macOS).
            ("grpc.so_reuseport", 1 if reuse_port else 0),
        ],
        # Beyond this many calls in flight, new ones are refused (RESOURCE_EXHAUSTED).
        maximum_concurrent_rpcs=limits.max_concurrent_rpcs or None,
    )
    # One bucket per tenant, shared by both faces.
    rate_limiter = RateLimiter(
        config.limits.tenant_requests_per_second, config.limits.tenant_request_burst
    )
    servicer = ModelRouterServicer(
        config=config,
        pipeline=pipeline,
        catalog=catalog,
        registry=registry,
        state=state,
        stats=telemetry.stats,
        authenticator=authenticator,
        rate_limiter=rate_limiter,
        rpc=RpcTelemetry(telemetry, SERVICE_NAME),
        shadow=shadow,
    )
    add_to_server(servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    _enable_reflection(server, (SERVICE_NAME, health.SERVICE_NAME))
    address = f"{host}:{config.server.port if port is None else port}"
    if credentials is None:
        bound_port = server.add_insecure_port(address)
    else:
        bound_port = server.add_secure_port(address, credentials)
    await server.start()

    # ---- HTTP face (issue 13): the same services, on uvicorn in this event loop.
    http_server = None
    http_port = config.http.port if http_port is None else http_port
    if http_port != 0:
        from .http import HttpServices, create_app, start_http

        open_to_all = config.state.auth.allow_unauthenticated or insecure
        if not authenticator.enabled and config.http.host not in _LOOPBACK and not open_to_all:
            await server.stop(0)
            raise ConfigError(
                f"{config.source}: auth.enabled is false but the HTTP face would listen on "
                f"{config.http.host!r} (http.host), reachable from other machines; enable "
                "[auth] with API keys, listen on 127.0.0.1, or set "
                "auth.allow_unauthenticated = true (serve --insecure) to accept anyone"
            )
        app = create_app(
            HttpServices(
                config=config,
                pipeline=pipeline,
                catalog=catalog,
                state=state,
                telemetry=telemetry,
                authenticator=authenticator,
                rate_limiter=rate_limiter,
                shadow=shadow.stats if shadow.enabled else None,
            )
        )
        try:
            http_server = await start_http(
                app,
                config.http.host,
                max(http_port, 0),
                reuse_port=reuse_port,
                auth=config.state.auth,
            )
        except BaseException:
            await server.stop(0)
            raise
        log.info("HTTP face and dashboard on http://%s:%d/", config.http.host, http_server.port)
    # ---- end HTTP face

    # Ready only now: plugins are loaded, providers checked and the port is bound.
    for service in ("", SERVICE_NAME):
        await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    log.info(
        "modelrouter serving on %s:%d (%d models, %d available; classifiers: %s)",
        host,
        bound_port,
        len(catalog.models),
        sum(catalog.unavailable_reason(m) is None for m in catalog.models.values()),
        ", ".join(sorted(registry.classifiers)),
    )
    return ModelRouterServer(
        grpc_server=server,
        port=bound_port,
        config=config,
        registry=registry,
        catalog=catalog,
        state=state,
        telemetry=telemetry,
        pipeline=pipeline,
        health=health_servicer,
        shadow=shadow,
        telemetry_providers=built,
        http=http_server,
        router_store=router_store,
        routers=routers,
        retrain_schedule=retrain_schedule,
    )


def _enable_reflection(server: grpc.aio.Server, services: tuple[str, ...]) -> None:
    """Serve reflection as ``v1alpha`` and as ``v1``: grpcurl and older clients ask the
    former, newer clients the latter. The two protocols are the same messages under
    another service name (grpcio-reflection ships only ``v1alpha``)."""
    servicer = reflection.aio.ReflectionServicer(
        (*services, reflection.SERVICE_NAME, REFLECTION_V1)
    )
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1 = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(REFLECTION_V1, {"ServerReflectionInfo": v1}),)
    )


async def _serve(config: Config, options: Mapping[str, Any]) -> None:
    server = await create_server(config, **options)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    log.info("stopping: draining for up to %.1f s", config.server.grace_period_s)
    await server.stop()


def serve(config_path: str | None = None, **options: Any) -> None:
    """Run a server until SIGTERM or SIGINT. ``options`` go to :func:`create_server`
    (``host``, ``port``, ``insecure``; ``reuse_port`` shares the port with the other
    processes of ``serve --workers``)."""
    config = load_config(config_path)
    # uvloop when installed (the `fast` extra): cheaper gRPC handoffs and upstream I/O.
    eventloop.run(_serve(config, options))
