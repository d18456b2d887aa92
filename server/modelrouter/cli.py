"""The ``modelrouter`` command: run the server, or call one.

Client commands take ``--target host:port`` (default ``$MODELROUTER_TARGET`` or
``localhost:50051``) and ``--json`` for machine-readable output.

A user's mistake never ends in a traceback: bad arguments and configuration problems are
reported on stderr and exit 2; a server that cannot be reached or answers with an error
exits 1, with one line naming the target or the status.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import grpc
from google.protobuf import json_format

from . import logsafe
from .config.environment import Environment
from .errors import ConfigError, RouterError

DEFAULT_TARGET = "localhost:50051"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: Exit statuses: 2 for the user's arguments or configuration, 1 for the server's answer.
USAGE_ERROR, SERVER_ERROR = 2, 1


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (plus where to look), not the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return USAGE_ERROR
    try:
        return int(args.run(args) or 0)
    except ConfigError as error:
        # One line per problem; each names the file and the key.
        print(error, file=sys.stderr)
        return USAGE_ERROR
    except grpc.RpcError as error:
        print(_describe_rpc_error(error, getattr(args, "target", None)), file=sys.stderr)
        return SERVER_ERROR
    except (RouterError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return SERVER_ERROR
    except KeyboardInterrupt:
        return 130


def _describe_rpc_error(error: grpc.RpcError, target: str | None) -> str:
    code, details = error.code(), error.details()  # type: ignore[attr-defined]
    if code == grpc.StatusCode.UNAVAILABLE and target is not None:
        return f"error: UNAVAILABLE: cannot reach modelrouter at {target} ({details})"
    if code == grpc.StatusCode.DEADLINE_EXCEEDED and target is not None:
        return f"error: DEADLINE_EXCEEDED: no answer from modelrouter at {target} in time"
    return f"error: {code.name}: {details}"


def _json_file(path: str) -> Any:
    """The JSON document in ``path`` (a usage error, not a traceback, when it is not one)."""
    try:
        return json.loads(Path(path).read_text("utf-8"))
    except OSError as error:
        raise argparse.ArgumentTypeError(f"cannot read {path!r}: {error.strerror}") from None
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{path!r} is not valid JSON: {error}") from None


def _request_arguments(command: argparse.ArgumentParser) -> None:
    """What a request carries besides its text: tools, images, a response format, a session."""
    command.add_argument(
        "--tool-file",
        type=_json_file,
        help="JSON file with a list of tools: {name, description, parameters} "
        '(OpenAI\'s {"type": "function", "function": {...}} is accepted too)',
    )
    command.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="PATH",
        help="attach an image (a file or an http(s) URL) to the user message; repeatable",
    )
    command.add_argument(
        "--json-schema",
        type=_json_file,
        metavar="FILE",
        help="answer as JSON conforming to the JSON Schema in FILE",
    )
    command.add_argument("--session", help="session id: later turns keep the session's model")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def build_parser(environ: Environment | None = None) -> argparse.ArgumentParser:
    env = environ or Environment()
    parser = _Parser(prog="modelrouter", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(title="commands")

    serve = commands.add_parser("serve", help="run the gRPC server")
    serve.add_argument("--config", help="TOML configuration (default: the shipped one)")
    serve.add_argument("--host", help="address to bind (default: server.host)")
    serve.add_argument("--port", type=int, help="port to bind (default: server.port)")
    serve.add_argument(
        "--http-port",
        type=int,
        help="port of the OpenAI-compatible HTTP face and dashboard (default: http.port; 0: off)",
    )
    serve.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        default=(env.get("MODELROUTER_LOG_LEVEL") or "INFO").upper(),
        help="default: $MODELROUTER_LOG_LEVEL or INFO",
    )
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="processes sharing the port (state via [storage])",
    )
    serve.add_argument(
        "--insecure",
        action="store_true",
        help="accept unauthenticated callers on a non-loopback address "
        "(like [auth] allow_unauthenticated = true)",
    )
    serve.set_defaults(run=_serve)

    for name, help_text, run in (
        ("classify", "classify a prompt", _classify),
        ("route", "choose a model for a prompt", _route),
    ):
        command = commands.add_parser(name, help=help_text)
        _client_arguments(command, env)
        command.add_argument("prompt", help="the user message")
        command.add_argument("--system", help="a system prompt sent before the user message")
        _constraint_arguments(command)
        if name == "route":
            _request_arguments(command)
        command.set_defaults(run=run)

    execute = commands.add_parser("execute", help="route a prompt and print the answer")
    _client_arguments(execute, env)
    execute.add_argument("prompt", help="the user message")
    execute.add_argument("--system", help="a system prompt sent before the user message")
    execute.add_argument("--model", default="", help="call this catalog model first")
    execute.add_argument("--stream", action="store_true", help="print the answer as it arrives")
    execute.add_argument("--temperature", type=float)
    _constraint_arguments(execute)
    _request_arguments(execute)
    execute.set_defaults(run=_execute)

    for name, help_text, run in (
        ("models", "list the model catalog", _models),
        ("plugins", "list loaded and failed plugins", _plugins),
        ("stats", "show what the server has observed since it started", _stats),
        ("usage", "show the tenant's spend and budget left per window", _usage),
    ):
        command = commands.add_parser(name, help=help_text)
        _client_arguments(command, env)
        command.set_defaults(run=run)

    feedback = commands.add_parser("feedback", help="submit feedback on a decision")
    _client_arguments(feedback, env)
    feedback.add_argument("decision_id")
    feedback.add_argument("score", type=float, help="quality of the answer in [0, 1]")
    feedback.add_argument("--failed", action="store_true", help="the answer was unusable")
    feedback.add_argument("--comment", default="")
    feedback.add_argument(
        "--source", default="", help="who judges (repeats per source are idempotent)"
    )
    feedback.set_defaults(run=_feedback)

    from .admin import add_commands as add_state_commands
    from .config.commands import add_commands as add_config_commands
    from .learning.commands import add_commands as add_learning_commands
    from .routers_admin import add_commands as add_router_commands

    add_config_commands(commands)
    add_state_commands(commands)
    add_learning_commands(commands)
    add_router_commands(commands)
    return parser


def _client_arguments(command: argparse.ArgumentParser, env: Environment) -> None:
    command.add_argument(
        "--target",
        default=env.get("MODELROUTER_TARGET") or DEFAULT_TARGET,
        help="host:port of the server (default: $MODELROUTER_TARGET or localhost:50051)",
    )
    command.add_argument("--json", action="store_true", help="print JSON")
    command.add_argument("--timeout", type=float, default=30.0, help="deadline in seconds")
    command.add_argument(
        "--api-key",
        default=env.get("MODELROUTER_API_KEY"),
        help="sent as a bearer token when the server has auth on (default: $MODELROUTER_API_KEY)",
    )


def _constraint_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--classifier")
    command.add_argument("--max-cost-usd", type=float)
    command.add_argument("--max-latency-ms", type=float)
    command.add_argument("--min-quality", type=float)
    command.add_argument("--max-output-tokens", type=int)
    command.add_argument("--willingness-to-pay", type=float)
    command.add_argument("--allow-provider", action="append", default=[], dest="allowed_providers")
    command.add_argument("--exclude-model", action="append", default=[], dest="excluded_models")
    command.add_argument("--capability", action="append", default=[], dest="required_capabilities")


def _constraints(args: argparse.Namespace) -> dict[str, Any]:
    names = (
        "classifier",
        "max_cost_usd",
        "max_latency_ms",
        "min_quality",
        "max_output_tokens",
        "willingness_to_pay",
        "allowed_providers",
        "excluded_models",
        "required_capabilities",
    )
    return {name: getattr(args, name) for name in names if getattr(args, name) not in (None, [])}


def _conversation(args: argparse.Namespace) -> Any:
    from modelrouter_client import build_messages, image, user_message

    turns = [("system", args.system)] if getattr(args, "system", None) else []
    images = getattr(args, "image", [])
    if not images:
        return [*turns, ("user", args.prompt)]
    return [*build_messages(turns), user_message(args.prompt, *(image(p) for p in images))]


def _request_options(args: argparse.Namespace) -> dict[str, Any]:
    """Tools, response format and session from the command line (see _request_arguments)."""
    from modelrouter_client import json_schema, tool

    options: dict[str, Any] = {}
    if getattr(args, "tool_file", None) is not None:
        entries = args.tool_file if isinstance(args.tool_file, list) else [args.tool_file]
        tools = []
        for entry in entries:
            spec = entry.get("function", entry) if isinstance(entry, dict) else {}
            if not isinstance(spec, dict) or "name" not in spec:
                raise ConfigError(f"--tool-file: each tool needs a name, got {entry!r:.80}")
            tools.append(tool(spec["name"], spec.get("parameters"), spec.get("description", "")))
        options["tools"] = tools
    if getattr(args, "json_schema", None) is not None:
        options["response_format"] = json_schema(args.json_schema)
    if getattr(args, "session", None):
        options["session_id"] = args.session
    return options


def _call(args: argparse.Namespace, call: Callable[[Any], Any]) -> Any:
    from modelrouter_client import ModelRouterClient

    with ModelRouterClient(args.target, api_key=args.api_key, timeout_s=args.timeout) as client:
        return call(client)


def _print(args: argparse.Namespace, message: Any, text: str) -> None:
    if args.json:
        print(
            json.dumps(
                json_format.MessageToDict(message, preserving_proto_field_name=True), indent=2
            )
        )
    else:
        print(text)


def _serve(args: argparse.Namespace) -> int:
    from .server import serve

    options = {"host": args.host, "port": args.port, "insecure": args.insecure}
    if args.http_port is not None:
        options["http_port"] = args.http_port
    if args.workers > 1:
        from .admin import run_workers
        from .config import load_config

        # Checked here, once: each worker would otherwise fail (or worse, run) on its own.
        load_config(args.config).check_workers(args.workers)

        return run_workers(args.workers, args.config, args.log_level, options)
    logsafe.configure(args.log_level, "%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(args.config, **options)
    return 0


def _describe_classification(c: Any) -> str:
    from .v1 import router_pb2 as pb

    return (
        f"{pb.Complexity.Name(c.complexity).removeprefix('COMPLEXITY_')} "
        f"{pb.TaskType.Name(c.task_type).removeprefix('TASK_TYPE_')} "
        f"score={c.score:.2f} confidence={c.confidence:.2f} by {c.classifier}"
    )


def _classify(args: argparse.Namespace) -> int:
    response = _call(args, lambda c: c.classify(_conversation(args), **_constraints(args)))
    _print(args, response, _describe_classification(response))
    return 0


def _route(args: argparse.Namespace) -> int:
    options = {**_constraints(args), **_request_options(args)}
    response = _call(args, lambda c: c.route(_conversation(args), **options))
    selected = response.selected
    # Route may choose a model whose key only the caller holds: say so.
    elsewhere = (
        f" (call it yourself: {selected.not_executable_reason} here)"
        if not selected.executable
        else ""
    )
    lines = [
        f"selected: {selected.model} ({selected.provider}) "
        f"est. ${selected.estimated_cost_usd:.6f}{elsewhere}",
        f"fallbacks: {', '.join(f.model for f in response.fallbacks) or 'none'}",
        f"classification: {_describe_classification(response.classification)}",
        f"reason: {response.reason}",
        f"decision: {response.decision_id}",
    ]
    _print(args, response, "\n".join(lines))
    return 0


def _execute(args: argparse.Namespace) -> int:
    conversation = _conversation(args)
    options = {
        "model": args.model,
        "temperature": args.temperature,
        **_constraints(args),
        **_request_options(args),
    }
    if not args.stream:
        response = _call(args, lambda c: c.execute(conversation, **options))
        _print(args, response, response.text + "\n" + _describe_execution(response))
        return 0

    def stream(client: Any) -> Any:
        summary = None
        for message in client.execute_stream(conversation, **options):
            if message.HasField("summary"):
                summary = message.summary
            elif not args.json:
                print(message.delta, end="", flush=True)
        return summary

    summary = _call(args, stream)
    _print(args, summary, "\n" + _describe_execution(summary))
    return 0


def _describe_execution(response: Any) -> str:
    attempts = ", ".join(
        f"{a.model}:{a.outcome}" + (f"/{a.error_type}" if a.error_type else "")
        for a in response.attempts
    )
    return (
        f"-- {response.model} ({response.provider}) {response.usage.input_tokens}+"
        f"{response.usage.output_tokens} tokens ${response.cost_usd:.6f} "
        f"{response.latency_ms:.0f} ms; attempts: {attempts}; decision {response.decision_id}"
    )


def _models(args: argparse.Namespace) -> int:
    from .v1 import router_pb2 as pb

    models = pb.ListModelsResponse(models=_call(args, lambda c: c.list_models()))
    lines = [
        f"{m.name:<22} {m.provider:<10} in ${m.input_price_usd_per_mtok:>6.2f} "
        f"out ${m.output_price_usd_per_mtok:>6.2f} /Mtok  quality {m.quality:.2f}  "
        + ("available" if m.available else f"unavailable: {m.unavailable_reason}")
        for m in models.models
    ]
    _print(args, models, "\n".join(lines))
    return 0


def _plugins(args: argparse.Namespace) -> int:
    response = _call(args, lambda c: c.list_plugins())
    lines = [
        f"{p.name:<20} {p.distribution or '-'} {p.version} "
        + (f"FAILED: {p.load_error}" if p.load_error else ", ".join(p.registered))
        for p in response.plugins
    ]
    lines.append(
        f"classifiers: {', '.join(response.classifiers)} (default {response.default_classifier})"
    )
    _print(args, response, "\n".join(lines))
    return 0


def _stats(args: argparse.Namespace) -> int:
    r = _call(args, lambda c: c.get_stats())
    lines = [
        f"since {r.started_at} ({r.uptime_s:.0f} s): {r.requests} requests, "
        f"{r.success_rate:.1%} succeeded",
    ]
    for m in r.methods:
        if m.requests:
            lines.append(
                f"  {m.method:<14} {m.requests:>8} calls  ok {m.success_rate:6.1%}  "
                f"client errors {m.client_errors}  server errors {m.server_errors}  "
                f"p50 {m.latency_p50_ms:.2f} ms  p90 {m.latency_p90_ms:.2f} ms  "
                f"p99 {m.latency_p99_ms:.2f} ms"
            )
    lines += [
        f"decisions: {r.decisions}   executions: {r.executions}   "
        f"fallbacks: {r.fallbacks}   retries: {r.retries}",
        f"actual cost: ${r.cost_usd:.6f}",
        f"estimated cost of the selected models:  ${r.estimated_cost_usd:.6f}",
        f"estimated cost of the strongest models: ${r.strongest_estimated_cost_usd:.6f}",
        f"estimated saving: ${r.estimated_saving_usd:.6f}"
        + (
            f" ({r.estimated_saving_usd / r.strongest_estimated_cost_usd:.1%})"
            if r.strongest_estimated_cost_usd
            else ""
        ),
    ]
    if r.models:
        lines.append("models:")
        total = sum(m.selected for m in r.models) or 1
        lines += [
            f"  {m.model:<22} selected {m.selected:>7} ({m.selected / total:6.1%})  "
            f"answered {m.answered:>7}  cost ${m.cost_usd:.6f}  "
            f"tokens {m.input_tokens} in / {m.output_tokens} out"
            for m in r.models
        ]
    if r.shadow or r.shadow_skipped:
        lines.append(f"shadow evaluation (live quality vs the reference): ${r.shadow_cost_usd:.6f}")
        lines += [
            f"  {q.model:<22} {q.complexity:<9} judged {q.evaluations:>6}  "
            f"adequate {q.adequacy_rate:6.1%}  gap to reference {q.quality_gap:+.2f}"
            + (
                f"  P(adequate) {q.mean_p_adequate:.2f}, calibration error "
                f"{q.calibration_error:.3f}"
                if q.calibrated_evaluations
                else ""
            )
            for q in r.shadow
        ]
        if r.shadow_skipped:
            skipped = ", ".join(f"{k} {v}" for k, v in sorted(r.shadow_skipped.items()))
            lines.append(f"  skipped: {skipped}")
    _print(args, r, "\n".join(lines))
    return 0


def _usage(args: argparse.Namespace) -> int:
    response = _call(args, lambda c: c.get_usage())
    lines = [f"tenant: {response.tenant}"]
    if not response.windows:
        lines.append("no budget configured")
    for w in response.windows:
        lines.append(
            f"{w.window:>5}: spent ${w.spent_usd:.6f}  reserved ${w.reserved_usd:.6f}  "
            f"remaining ${w.remaining_usd:.6f} of ${w.limit_usd:g}  (resets {w.resets_at})"
        )
    for w in response.shadow_windows:
        lines.append(
            f"shadow evaluation, {w.window}: spent ${w.spent_usd:.6f} of its cap "
            f"${w.limit_usd:g} (included above)"
        )
    _print(args, response, "\n".join(lines))
    return 0


def _feedback(args: argparse.Namespace) -> int:
    response = _call(
        args,
        lambda c: c.submit_feedback(
            args.decision_id,
            args.score,
            success=not args.failed,
            comment=args.comment,
            source=args.source,
        ),
    )
    _print(args, response, "already recorded (duplicate)" if response.duplicate else "recorded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
