"""``ponder solve | run | report | models``: the command line over the config tree.

    ponder solve "What is 17 + 25?" strategy=self_consistency strategy.n=16 \
        budget.generated_tokens=4000 backend=embedded
    ponder run -m strategy.n=1,4,16 dataset=word_problems     # experiment runs (Hydra)
    ponder tune dataset.size=24 tune.trials=16                # fronts + an 'auto' profile (Hydra)
    ponder verifier train arithmetic dataset.size=60          # a learned verifier (Hydra)
    ponder report runs/sweep                                  # table + scaling curve
    ponder serve backend=embedded --host 127.0.0.1 --port 8000  # OpenAI-compatible endpoint
    ponder graph sc_over_short_mk strategy.n=4                # print and draw a strategy graph
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import sys
import warnings
from typing import Any

from ponder.errors import BadRequestError, PonderError


def _set_up_terminal(verbose: bool) -> None:
    """Logs go to stderr, stdout is for results; the engine's logs, warnings and progress
    bars only with ``-v``. Set before any engine starts: its core process inherits it."""
    from ponder.console import prepare_engine_output

    prepare_engine_output(verbose)
    if not verbose:
        warnings.simplefilter("ignore", FutureWarning)  # libraries' deprecations, not the user's
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")


def _solve(args: argparse.Namespace) -> int:
    import asyncio

    from ponder.api import asolve, build_budget, coerce_problem
    from ponder.backends.pool import engines
    from ponder.config import compose
    from ponder.console import progress
    from ponder.strategies import strategies

    config = compose(args.overrides)
    problem = coerce_problem({"prompt": args.prompt, "reference": args.reference})
    strategy, budget = strategies.build(config["strategy"]), build_budget(config["budget"])

    async def run() -> Any:  # everything checked above: the engine starts only for valid input
        try:
            with progress(f"loading engine ({_model_name(config['backend'])})…"):
                backend = await engines.backend(config["backend"])
            with progress(f"solving with {strategy.name}…"):
                return await asolve(problem, strategy=strategy, backend=backend, budget=budget,
                                    seed=config["seed"])
        finally:
            await engines.close()

    result = asyncio.run(run())
    if args.json:
        print(json.dumps({"config": config, **result.to_dict()}, indent=2))
    else:
        print(_summary(result, args.reference))
    return 0


def _model_name(backend: dict[str, Any]) -> str:
    """The model's name as the user knows it: a folder's last part, a hub name's."""
    from ponder.models.embedded import EMBEDDED_NAME

    model = str(backend.get("model", "?"))
    return EMBEDDED_NAME if model == "embedded" else model.rstrip("/").rsplit("/", 1)[-1]


def _summary(result: Any, reference: str | None) -> str:
    from ponder.verifiers.grading import grade

    usage = result.usage
    lines = [f"answer: {result.answer}"]
    if reference is not None:
        lines.append(f"grade:  {grade(result.answer, reference)} (reference {reference})")
    for key, value in result.details.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k!r}: {v:g}" for k, v in sorted(value.items(), key=lambda kv: -kv[1]))
        lines.append(f"{key}: {value}")
    finished = sum(c.answer is not None for c in result.candidates)
    lines.append(f"candidates: {len(result.candidates)} ({finished} with an answer)")
    lines.append(
        f"usage: {usage.generated_tokens} generated tokens ({usage.thinking_tokens} thinking, "
        f"{usage.cancelled_tokens} cancelled), "
        f"{usage.prompt_tokens} prompt tokens ({usage.cached_prompt_tokens} from the prefix cache), "
        f"{usage.model_calls} model calls, {usage.verifier_calls} verifier calls, "
        f"{usage.wall_seconds:.1f} s"
    )
    if result.budget_exhausted:
        lines.append(f"budget: exhausted by {result.exhausted_by}; this is the best answer so far")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    from ponder.experiments.app import main as run_app

    return run_app(args.hydra_args)


def _tune(args: argparse.Namespace) -> int:
    from ponder.tuning.app import main as tune_app

    return tune_app(args.hydra_args)


def _verifier(args: argparse.Namespace) -> int:
    from ponder.experiments.verifier_training import main as train_app

    return train_app(args.hydra_args)


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ponder.experiments.report import report

    table, files = report(args.run_dirs, Path(args.out) if args.out else None)
    print(table)
    print("wrote " + ", ".join(str(f) for f in files))
    return 0


def _serve(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from ponder.backends.factory import backend_key
    from ponder.config import compose
    from ponder.core.registry import describe_validation_error
    from ponder.server import ServerSettings, create_app
    from ponder.server.serve import serve

    config = compose(args.overrides)
    keys = [*args.api_key, *filter(None, os.environ.get("PONDER_API_KEYS", "").split(","))]
    caps = dict(ServerSettings.model_fields["caps"].default.model_dump(exclude_none=True))
    for cap in args.cap:
        name, _, value = cap.partition("=")
        caps[name] = None if value in ("", "none", "null") else value
    try:
        settings = ServerSettings(
            model_name=args.model_name, api_keys=tuple(keys), caps=caps,
            max_prompt_tokens=args.max_prompt_tokens, max_body_bytes=args.max_body_bytes,
            per_key_concurrency=args.per_key_concurrency, default_strategy=config["strategy"],
            profiles=args.profiles, force_profile=args.force_profile, max_restarts=args.max_restarts,
            restart_backoff_s=args.restart_backoff_s,
        )
    except ValidationError as exc:
        raise BadRequestError(describe_validation_error("serve", exc)) from None
    backend_key(config["backend"])  # a bad backend config fails now, not after the port opens
    app = create_app(settings, backend_spec=config["backend"],
                     announce=lambda line: print(line, file=sys.stderr, flush=True))
    serve(app, host=args.host, port=args.port, grace_s=args.grace_s,
          log_level="info" if args.verbose else "warning")
    return 0


def _graph(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ponder.graph import discover, draw_png, graph_config, load_graph, render_tree

    graph = discover(load_graph(graph_config(args.config, args.overrides)))
    print(render_tree(graph))
    out = draw_png(graph, args.out or f"{Path(args.config).stem}.png")
    print(f"wrote {out}")
    return 0


def _models(args: argparse.Namespace) -> int:
    from ponder.models.registry import list_models, resolve_model

    if args.action == "prepare":
        print(resolve_model(args.name))
        return 0
    for info in list_models():
        status = "ready" if info.ready else "not prepared (ponder models prepare)"
        print(f"{info.name}\t{status}\t{info.location}\t{info.source}")
    print("any local Hugging Face folder or hub name also works: backend.model=PATH_OR_NAME")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ponder", description="Test-time compute for LLMs.")
    parser.add_argument("-v", "--verbose", action="store_true", help="show engine logs")
    commands = parser.add_subparsers(dest="command", required=True)

    solve = commands.add_parser("solve", help="solve one problem with a strategy")
    solve.add_argument("prompt", help="the question")
    solve.add_argument("overrides", nargs="*", help="config overrides, e.g. strategy.n=16")
    solve.add_argument("--reference", help="the right answer, to grade the result")
    solve.add_argument("--json", action="store_true", help="print the whole result as JSON")
    solve.set_defaults(handler=_solve)

    run = commands.add_parser(
        "run", add_help=False, help="experiment runs over a dataset (a Hydra app; --help for its options)",
    )
    run.set_defaults(handler=_run, hydra_args=[])  # its arguments are Hydra's: see _parse

    tune = commands.add_parser(
        "tune", add_help=False,
        help="search strategy configs for accuracy against tokens; writes fronts and an 'auto' profile (a Hydra app)",
    )
    tune.set_defaults(handler=_tune, hydra_args=[])  # its arguments are Hydra's: see _parse

    verifier = commands.add_parser(
        "verifier", add_help=False,
        help="`verifier train DATASET key=value ...`: train a learned verifier (a Hydra app)",
    )
    verifier.set_defaults(handler=_verifier, hydra_args=[])  # `train` and Hydra's arguments: see _parse

    report = commands.add_parser("report", help="table and scaling plot of experiment runs")
    report.add_argument("run_dirs", nargs="+", help="run folders, or folders holding them (a sweep)")
    report.add_argument("--out", help="where to write report.csv and scaling.png (default: their common folder)")
    report.set_defaults(handler=_report)

    serve = commands.add_parser("serve", help="the budget-aware OpenAI-compatible endpoint")
    serve.add_argument("overrides", nargs="*", help="config overrides: backend=..., strategy=... (the default)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--model-name", default="ponder", help="the model id clients ask for")
    serve.add_argument("--api-key", action="append", default=[],
                       help="accepted bearer key (repeat; also PONDER_API_KEYS=k1,k2); none: no auth")
    serve.add_argument("--cap", action="append", default=[], metavar="LIMIT=VALUE",
                       help="the most a request may ask, e.g. generated_tokens=8000 (none: no cap)")
    serve.add_argument("--max-prompt-tokens", type=int, default=1536)
    serve.add_argument("--max-body-bytes", type=int, default=1_000_000)
    serve.add_argument("--per-key-concurrency", type=int, default=64)
    serve.add_argument("--profiles", help="accuracy-vs-tokens profiles for strategy 'auto'")
    serve.add_argument("--force-profile", action="store_true",
                       help="use the profiles even when they were made for another model")
    serve.add_argument("--grace-s", type=float, default=30.0,
                       help="on shutdown, how long in-flight requests may finish before they are cancelled")
    serve.add_argument("--max-restarts", type=int, default=5,
                       help="engine restarts allowed within 10 minutes after crashes; then /health stays 503")
    serve.add_argument("--restart-backoff-s", type=float, default=1.0,
                       help="wait before restarting a dead engine, doubled per further restart (max 30 s)")
    serve.set_defaults(handler=_serve)

    graph = commands.add_parser("graph", help="validate, print and draw a strategy graph (no engine)")
    graph.add_argument("config", help="a YAML file, or a config name in configs/strategy/")
    graph.add_argument("overrides", nargs="*",
                       help="for a name: config overrides (strategy.n=4); for a file: its keys (n=4)")
    graph.add_argument("--out", help="where to write the PNG (default: CONFIG's name .png)")
    graph.set_defaults(handler=_graph)

    models = commands.add_parser("models", help="list or prepare models")
    models.add_argument("action", nargs="?", choices=["list", "prepare"], default="list")
    models.add_argument("name", nargs="?", default="embedded", help="model to prepare")
    models.set_defaults(handler=_models)
    return parser


def _parse(argv: list[str]) -> argparse.Namespace:
    """Everything after ``run``, ``tune`` or ``verifier train`` goes to Hydra untouched (argparse would
    claim ``-m``, ``--cfg``)."""
    flags = len(list(itertools.takewhile(lambda arg: arg.startswith("-"), argv)))
    if argv[flags:flags + 1] in (["run"], ["tune"]):
        args = build_parser().parse_args([*argv[:flags], argv[flags]])
        args.hydra_args = argv[flags + 1:]
        return args
    if argv[flags:flags + 2] == ["verifier", "train"]:
        args = build_parser().parse_args([*argv[:flags], "verifier"])
        args.hydra_args = argv[flags + 2:]
        return args
    if argv[flags:flags + 1] == ["verifier"]:
        build_parser().error("verifier: the action is `train` (ponder verifier train DATASET ...)")
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else list(argv))
    _set_up_terminal(args.verbose)
    try:
        return args.handler(args)
    except BadRequestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except PonderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
