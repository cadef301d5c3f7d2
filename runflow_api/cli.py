"""`python -m runflow_api` / `runflow-isolate`: product isolation for a whole catalogue from a terminal.

It shares the node's engine, cache, journal and ledger: a photo isolated in ComfyUI is not paid for
again here, a re-run skips what is done and collects runs already paid for, and Ctrl-C stops cleanly.
Exit codes: 0 all succeeded, 1 some items failed, 2 nothing was started (usage, bad input, key, limits),
130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from . import (
    __version__,
    catalogue,
    config,
    directories,
    fleet,
    qa,
    report_html,
    run_metadata,
    service,
    service_address,
)
from .callback_server import CallbackReceiver, parse_listen
from .callbacks import CallbackSettings
from .client import RunflowClient
from .errors import InputRejected, InsufficientCredit, RunflowCancelled, RunflowError, SpendLimitExceeded
from .ledger import Ledger
from .post_processing import PostProcessing
from .product_isolation import AUTO_ASPECT, PRICE_PER_IMAGE, option_fields, option_names
from .progress import ProgressTally
from .result_types import BatchPlan, Charges, IsolationResult

EXIT_OK, EXIT_FAILED, EXIT_REFUSED, EXIT_INTERRUPTED = 0, 1, 2, 130
SAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
# A dry run only reads the cache and the journal, so it needs no key; the client object still wants one
# and gets this stand-in, which no request carries (the dry-run tests count the requests: zero).
DRY_RUN_KEY = "rf_test_dry_run_sends_nothing"
# Where the command line's default differs from the library's: a catalogue of photos of every shape.
CLI_DEFAULTS = {"aspect_ratio": AUTO_ASPECT}
DEMO_SERVICES = ("emulator", "runflow")


def _dollars(text: str) -> Decimal:
    """A dollar amount on the command line; argparse turns the refusal into a usage error (exit 2)."""
    try:
        amount = Decimal(text)
    except ArithmeticError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a dollar amount like 5 or 2.70") from None
    if not amount.is_finite():
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite dollar amount like 5 or 2.70")
    return amount


def _option_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per isolation option, read from `IsolationParams`: `--aspect-ratio`, `--resolution`,
    `--prompt`, `--lossless`..., so a new option reaches the command line without code here."""
    for item, how in option_fields():
        flag = "--" + item.name.replace("_", "-")
        if isinstance(item.default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=item.default, help=how.cli_help)
            continue
        default = CLI_DEFAULTS.get(item.name, item.default)
        shown = f" (default {default})" if default is not None else ""
        parser.add_argument(flag, default=default, choices=(*how.client_choices, *how.choices) or None,
                            help=how.cli_help + shown)


def _isolate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", help="image files, folders (searched recursively) or globs")
    parser.add_argument("--out", "-o", type=Path, required=True, help="output folder; the input tree is mirrored")
    _option_arguments(parser)
    parser.add_argument("--background", default="transparent",
                        help="'transparent' (RGBA output) or a colour: #ffffff, white, 255,255,255")
    parser.add_argument("--format", default="png", choices=catalogue.OUTPUT_FORMATS, help="output file format")
    parser.add_argument("--concurrency", type=int, default=8, help="runs in flight at once (default 8)")
    parser.add_argument("--max-cost", type=_dollars, default=None,
                        help="refuse to start if the new paid runs would cost more than this many dollars")
    parser.add_argument("--team-budget", type=_dollars, default=None,
                        help="dollars per UTC day for the whole fleet sharing RUNFLOW_SHARED_STORE "
                             "(default: RUNFLOW_TEAM_BUDGET)")
    parser.add_argument("--dry-run", action="store_true", help="count and price the work; spend nothing")
    parser.add_argument("--emulator", action="store_true", help="use the bundled emulator: free and offline")
    parser.add_argument("--report", type=Path, default=None,
                        help="write a report of every input: x.json (data) or x.html (a contact sheet to look at)")
    parser.add_argument("--force", action="store_true", help="redo items whose output exists, and skip the cache")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE",
                        help="add KEY=VALUE to every run's metadata in Runflow's dashboard (repeatable)")
    parser.add_argument("--public-url", default=None, metavar="URL",
                        help="with --callback-listen: the base URL at which Runflow reaches the receiver; runs "
                        "then call back instead of being polled (secret: RUNFLOW_CALLBACK_SECRET or its file)")
    parser.add_argument("--callback-listen", default=None, metavar="HOST:PORT",
                        help="with --public-url: serve POST /runflow/callback here while the command runs")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m runflow_api", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"runflow_api {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    _isolate_arguments(commands.add_parser("isolate", help="isolate the products in photos"))
    demo = commands.add_parser("demo", help="isolate the bundled sample photo (on the free emulator unless "
                               "--service runflow)")
    demo.add_argument("--out", "-o", type=Path, default=Path("out/demo"))
    demo.add_argument("--service", choices=DEMO_SERVICES, default="emulator",
                      help="emulator (default): free and offline; runflow: the paid service with your key ($0.27)")
    commands.add_parser("spend", help="show what the ledger says was spent")
    return parser


@dataclass
class Summary:
    total: int = 0
    skipped: int = 0
    done: int = 0
    cached: int = 0
    resumed: int = 0
    failed: int = 0
    shared: int = 0  # of the cached: supplied by the fleet's shared store
    waited_for_machine: int = 0  # of the cached: produced by another machine while this one waited
    cost: Decimal = Decimal(0)
    emulator: bool = False
    rows: list[dict[str, Any]] = field(default_factory=list)
    flagged: dict[str, list[str]] = field(default_factory=dict)  # QA flag -> inputs carrying it (qa.FLAGS)
    flagged_inputs: int = 0
    charges: Charges = field(init=False)

    def __post_init__(self) -> None:
        self.charges = Charges(emulator=self.emulator)


class _Display:
    """A tqdm bar when tqdm is installed, else a plain line every two seconds; silent with --quiet."""

    def __init__(self, total: int, quiet: bool) -> None:
        self._bar: Any = None
        self._last = 0.0
        self._quiet = quiet
        if quiet:
            return
        try:
            from tqdm import tqdm
        except ImportError:
            return
        self._bar = tqdm(total=total, unit="img", dynamic_ncols=True, file=sys.stderr)

    def update(self, finished: int, line: str) -> None:
        if self._bar is not None:
            self._bar.n = finished
            self._bar.set_postfix_str(line, refresh=True)
        elif not self._quiet and time.monotonic() - self._last > 2:
            self._last = time.monotonic()
            print(line, file=sys.stderr)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _row(item: catalogue.Item, status: str, **fields: Any) -> dict[str, Any]:
    return {"input": str(item.source), "output": str(item.output), "status": status, "name": item.relative,
            **fields}


def _flag(summary: Summary, name: str, flags: list[str]) -> None:
    """Count an input's QA flags for the end-of-run line (hints only: nothing fails because of them)."""
    summary.flagged_inputs += bool(flags)
    for flag in flags:
        summary.flagged.setdefault(flag, []).append(name)


def run_isolate(args: argparse.Namespace, client: RunflowClient, *, emulator: bool) -> int:
    items = catalogue.collect(args.paths, args.out, args.format)
    post = PostProcessing(background=args.background, outputs="all")  # every image a run returns is saved
    summary = Summary(total=len(items), emulator=emulator)
    todo = []
    for item in items:
        if item.refused:
            _fail(item, item.refused, summary)
        elif not args.force and catalogue.is_done(item):
            summary.skipped += 1
            summary.rows.append(_row(item, "skipped"))
        else:
            todo.append(item)
    options = {name: getattr(args, name) for name in option_names()}
    user_metadata = run_metadata.validate(run_metadata.parse_pairs(args.metadata), what="--metadata")
    _item_metadata("", user_metadata)  # a key the CLI sets itself is refused now, not once per photo
    price = Decimal(0) if emulator else PRICE_PER_IMAGE
    free = " (emulator: free)" if emulator else ""
    if args.dry_run or not _worst_case_passes(client, len(todo), args.max_cost):
        # Exact figures need every photo read and hashed (about 5 ms each): only when they matter.
        plan = client.plan([item.source for item in todo], force_rerun=args.force, skip_rejected=True, **options)
        counts = (
            f"{len(items)} photo(s): {summary.skipped} already done, {summary.failed} refused, {plan.cached} cached, "
            f"{plan.resumable} paid runs to collect, {plan.duplicates} duplicate(s), {plan.rejected} unreadable, "
        )
        if args.dry_run:
            print(counts + _dry_run_price(plan.to_create, emulator), file=sys.stderr)
            _write_report(args.report, summary, plan_only=True)
            return EXIT_OK
        cost = f"{plan.to_create} new run(s) at ${price} = ${plan.to_create * price:.2f}{free}."
        print(counts + cost, file=sys.stderr)
        client.check_spend(plan, args.max_cost)
    else:
        print(
            f"{len(items)} photo(s): {summary.skipped} already done, at most {len(todo)} new run(s) at ${price} = "
            f"${len(todo) * price:.2f}{free}; cached and duplicate photos cost nothing.",
            file=sys.stderr,
        )

    tally = ProgressTally(len(todo), emulator=emulator)
    display = _Display(len(todo), args.quiet)
    started = time.monotonic()
    try:
        for index, outcome in client.isolate_stream(
            [item.source for item in todo], force_rerun=args.force, on_progress=tally.update, outputs=post.outputs,
            metadata=lambda index: _item_metadata(todo[index].relative, user_metadata), **options
        ):
            _settle(todo[index], outcome, summary, post.color, args.format)
            snapshot = tally.snapshot()
            display.update(snapshot.finished, snapshot.status_line())
    except (KeyboardInterrupt, RunflowCancelled):
        display.close()
        print(
            "\nInterrupted. Finished results are saved; runs already paid for keep going at Runflow. "
            "Run the same command again to collect them without paying twice.",
            file=sys.stderr,
        )
        _write_report(args.report, summary, seconds=time.monotonic() - started)
        return EXIT_INTERRUPTED
    display.close()
    _print_summary(summary, time.monotonic() - started, client, emulator)
    _write_report(args.report, summary, seconds=time.monotonic() - started)
    return EXIT_FAILED if summary.failed else EXIT_OK


def _dry_run_price(new_runs: int, emulator: bool) -> str:
    """A dry run asks the service nothing, so it prices new runs at the list price, and says so."""
    total = f"${new_runs * PRICE_PER_IMAGE:.2f}"
    if emulator:
        return f"{new_runs} new run(s): free on the emulator ({total} at Runflow's list price of ${PRICE_PER_IMAGE})."
    return f"{new_runs} new run(s) at ${PRICE_PER_IMAGE} = {total} (list price; dry run: nothing was sent)."


def _worst_case_passes(client: RunflowClient, count: int, max_cost: Decimal | None) -> bool:
    """Whether the spend checks pass even if every photo were a new paid run."""
    bound = BatchPlan(total=count, unique=count, cached=0, resumable=0, to_create=count)
    try:
        client.check_spend(bound, max_cost)
    except (SpendLimitExceeded, InsufficientCredit):
        return False
    return True


def _item_metadata(relative: str, user: dict[str, str]) -> dict[str, str]:
    """Where a run came from, for Runflow's dashboard: the CLI and the input's path below its root."""
    origin = {"source": "cli", "input_path": relative[-run_metadata.MAX_VALUE_CHARS:]}
    return run_metadata.merge(origin, user, what="--metadata")


def _settle(item: catalogue.Item, outcome: Any, summary: Summary, background: Any, fmt: str) -> None:
    written: list[Path] = []
    if isinstance(outcome, IsolationResult):
        try:
            written = catalogue.save_all(outcome, item.output, fmt, background)
        except OSError as exc:
            outcome = RunflowError(f"Could not write {item.output}: {exc}. The result is cached; fix and re-run.")
    if isinstance(outcome, IsolationResult):
        status = "cached" if outcome.cached else "done"
        cost = summary.charges.charge(outcome)
        summary.cached += outcome.cached
        summary.done += not outcome.cached
        summary.resumed += outcome.resumed
        summary.shared += outcome.shared_hit and outcome.waited_for != "machine"
        summary.waited_for_machine += outcome.waited_for == "machine"
        summary.cost += cost
        summary.rows.append(_row(item, status, run_id=outcome.run_id, cost=f"{cost:.2f}",
                                 cached=outcome.cached, resumed=outcome.resumed,
                                 seconds=round(outcome.elapsed_s, 3), outputs=[str(path) for path in written],
                                 flags=outcome.flags))
        _flag(summary, item.relative or item.source.name, outcome.flags)
    else:
        _fail(item, str(outcome), summary, run_id=outcome.run_id)


def _fail(item: catalogue.Item, error: str, summary: Summary, run_id: str | None = None) -> None:
    summary.failed += 1
    summary.rows.append(_row(item, "failed", run_id=run_id, error=error))
    print(f"FAILED {item.source}: {error}", file=sys.stderr)


def _print_summary(summary: Summary, seconds: float, client: RunflowClient, emulator: bool) -> None:
    totals = client.ledger.totals(client.service_id)
    spent = "free (emulator)" if emulator else f"${summary.cost:.2f} (all time: ${totals.all_cost:.2f})"
    print(
        f"Done in {seconds:.1f} s: {summary.done} isolated ({summary.resumed} collected from earlier runs), "
        f"{summary.cached} from cache, {summary.skipped} already done, {summary.failed} failed. Spent {spent}.",
        file=sys.stderr,
    )
    if summary.flagged_inputs:
        print(qa.flagged_line(summary.flagged, summary.flagged_inputs), file=sys.stderr)
    if client.fleet is not None:
        print(fleet_line(client, shared=summary.shared, waited=summary.waited_for_machine), file=sys.stderr)


def _write_report(path: Path | None, summary: Summary, *, plan_only: bool = False, seconds: float = 0.0) -> None:
    """The report the extension of `path` asks for: .html a contact sheet to look at, else JSON. Inputs
    finished by an earlier run get their flags from their saved outputs, so both cover the catalogue."""
    if path is None:
        return
    if not plan_only:
        report_html.flag_skipped(summary.rows)
    names = ("total", "skipped", "done", "cached", "resumed", "failed", "shared", "waited_for_machine")
    counts = {k: getattr(summary, k) for k in names}
    flagged = sum(bool(row.get("flags")) for row in summary.rows)
    totals = {"cost": f"{summary.cost:.2f}", "emulator": summary.emulator, "dry_run": plan_only, "flagged": flagged,
              "seconds": round(seconds, 1)}
    report = {"summary": {**counts, **totals}, "items": summary.rows}
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".html", ".htm"):
        report_html.write(path, report)
    else:
        path.write_text(json.dumps(report, indent=2), encoding="utf-8")


def _client(args: argparse.Namespace, emulator: bool, callbacks: CallbackSettings | None = None) -> RunflowClient:
    # A catalogue is one pass: keeping recent results in memory would only grow the process.
    options: dict[str, Any] = {"max_concurrency": getattr(args, "concurrency", 8), "memory_cache": False,
                               "team_budget": getattr(args, "team_budget", None), "callbacks": callbacks or False}
    if getattr(args, "dry_run", False):  # no key needed, and no emulator started, to send nothing
        if emulator:
            options["service_id"] = service.EMULATOR_SERVICE_ID  # so the plan sees the emulator's cache
        return RunflowClient(api_key=DRY_RUN_KEY, **options)
    return service.make_client("emulator" if emulator else "runflow", **options)


def run_demo(args: argparse.Namespace) -> int:
    """The README's first command: one bundled photo, isolated, saved, and where it went printed."""
    sample = SAMPLES_DIR / "sneaker.jpg"
    if not sample.is_file():
        print(f"The bundled sample {sample} is missing; run examples/make_samples.py.", file=sys.stderr)
        return EXIT_REFUSED
    # Never the paid service by default: a key saved once in ComfyUI must not make the demo spend.
    emulator = args.service == "emulator"
    mode = ("the bundled emulator (free, offline; --service runflow uses your key, $0.27)" if emulator
            else f"Runflow at {service_address.resolve_base_url(None)} (your key; ${PRICE_PER_IMAGE})")
    print(f"Isolating {sample.name} on {mode}...", file=sys.stderr)
    with _client(args, emulator) as client:
        result = client.isolate(sample, aspect_ratio="auto", resolution="2K")
    out = args.out / "sneaker-isolated.png"
    catalogue.write_atomically(result.image, out, "png")
    white = args.out / "sneaker-on-white.jpg"
    catalogue.render(result.image, (255, 255, 255)).save(white, quality=92)
    print(f"run {result.run_id}: {result.image.size[0]}x{result.image.size[1]} {result.aspect_ratio}, "
          f"{'cached' if result.cached else f'{result.elapsed_s:.1f} s'}")
    print(f"Wrote {out.resolve()} (transparent) and {white.resolve()} (on white).")
    paid = "cached: nothing was paid" if result.cached else f"paid ${result.cost or PRICE_PER_IMAGE}"
    print("Service: the bundled emulator, nothing was paid." if emulator else f"Service: Runflow, {paid}.")
    return EXIT_OK


def fleet_line(client: RunflowClient, *, shared: int, waited: int) -> str:
    """What the fleet's shared store did for this command, and the team's spend today."""
    assert client.fleet is not None
    state = client.fleet.store.state()
    spent, reserved, whole_fleet = client.fleet.money.today()
    budget = client.fleet.money.team_budget
    scope = "team" if whole_fleet else "this machine (store unreachable)"
    limit = f" of ${budget:.2f}" if budget is not None else ""
    return (
        f"Shared store {state['url']} ({'connected' if state['connected'] else 'unreachable'}): {shared} result(s) "
        f"from the fleet, {waited} after waiting for another machine. Today ({scope}): ${spent:.2f}{limit} spent"
        + (f", ${reserved:.2f} reserved" if reserved else "") + "."
    )


def run_spend() -> int:
    ledger_path = directories.data_dir() / "ledger.jsonl"
    totals = Ledger.for_path(ledger_path).totals()
    print(f"All time: {totals.all_runs} paid run(s), ${totals.all_cost:.2f} (ledger: {ledger_path})")
    store = fleet.store_from_env()
    if store is not None:
        money = fleet.FleetMoney(store, team_budget=None, local_ledger=Ledger.for_path(ledger_path))
        spent, reserved, whole_fleet = money.today()
        who = "the fleet" if whole_fleet else "this machine (the shared store is unreachable)"
        print(f"Today (UTC), {who}: ${spent:.2f} spent, ${reserved:.2f} reserved (shared store: {store.display})")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "demo":
            return run_demo(args)
        if args.command == "spend":
            return run_spend()
        settings, listen = _callback_options(args)
        if settings is None or listen is None:
            with _client(args, args.emulator) as client:
                return run_isolate(args, client, emulator=args.emulator)
        with CallbackReceiver(*listen, settings.secret) as receiver:
            print(f"Receiving callbacks on port {receiver.port} for {settings.callback_url}.", file=sys.stderr)
            with _client(args, args.emulator, settings) as client:
                return run_isolate(args, client, emulator=args.emulator)
    except RunflowError as exc:
        print(f"runflow: {exc}", file=sys.stderr)
        return EXIT_REFUSED


def _callback_options(args: argparse.Namespace) -> tuple[CallbackSettings | None, tuple[str, int] | None]:
    """Callbacks for this command: both --public-url and --callback-listen, and a secret; or neither flag."""
    if args.public_url is None and args.callback_listen is None or args.dry_run:
        return None, None
    if args.public_url is None or args.callback_listen is None:
        raise InputRejected("--public-url and --callback-listen go together: the URL at which Runflow reaches "
                            "this machine, and the HOST:PORT the receiver listens on behind it.")
    secret = config.resolve_callback_secret()
    if secret is None:
        raise InputRejected(f"Callbacks need the signing secret: set {config.CALLBACK_SECRET_ENV}, or save it in "
                            f"{config.callback_secret_path()} (mode 0600), or leave out --public-url to poll.")
    public = service_address.validate_public_url(args.public_url, what="--public-url")
    return CallbackSettings(public, secret), parse_listen(args.callback_listen)


def isolate_main(argv: Sequence[str] | None = None) -> int:
    """`runflow-isolate PATH... --out DIR`: the isolate command without the sub-command word."""
    return main(["isolate", *(sys.argv[1:] if argv is None else argv)])
