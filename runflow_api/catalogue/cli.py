"""`python -m runflow_api` / `runflow-isolate`: the command line (its arguments, `isolate`, `demo`, `spend`).

`isolate` runs a catalogue through `catalogue/isolate.py`; this module parses the command, builds the
client (with its callback receiver when asked) and turns refusals into exit code 2.

It shares the node's engine, cache, journal and ledger: a photo isolated in ComfyUI is not paid for
again here, a re-run skips what is done and collects runs already paid for, and Ctrl-C stops cleanly.
Exit codes: 0 all succeeded, 1 some items failed, 2 nothing was started (usage, bad input, key, limits),
130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from .. import __version__, fleet
from .. import service_choice as service
from ..client import RunflowClient
from ..errors import InputRejected, RunflowError
from ..money.ledger import Ledger
from ..pictures import colour, marketplace, marketplace_presets
from ..pictures.post_processing import PostProcessing, rendering_fields
from ..product_isolation import AUTO_ASPECT, PRICE_PER_IMAGE, option_fields
from ..service import address as service_address
from ..service.callback_server import CallbackReceiver, parse_listen
from ..service.callbacks import CallbackSettings
from ..settings import config, directories
from . import folders as catalogue
from .isolate import EXIT_OK, EXIT_REFUSED, run_isolate

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
# A dry run only reads the cache and the journal, so it needs no key; the client object still wants one
# and gets this stand-in, which no request carries (the dry-run tests count the requests: zero).
DRY_RUN_KEY = "rf_test_dry_run_sends_nothing"
# Where the command line's default differs from the library's: a catalogue of photos of every shape.
# The resolution has none: unset, it is the library's 2K, or with --formats the tier the presets need.
CLI_DEFAULTS: dict[str, Any] = {"aspect_ratio": AUTO_ASPECT, "resolution": None}
CLI_HELP_MORE = {"resolution": " (default 2K; with --formats, the smallest that covers every preset)"}
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
    """One flag per option of both declarations: the isolation options of `IsolationParams`
    (`--aspect-ratio`, `--resolution`, `--prompt`, `--lossless`...), then the rendering options of
    `PostProcessing` that have a `cli_help` (`--background`, `--edges`, `--margin`...), so a new option
    reaches the command line without code here."""
    for item, how in option_fields():
        _flag(parser, item.name, CLI_DEFAULTS.get(item.name, item.default), (*how.client_choices, *how.choices),
              how.cli_help + CLI_HELP_MORE.get(item.name, ""))
    for item, rendering in rendering_fields():
        if rendering.cli_help is not None:
            _flag(parser, item.name, item.default, rendering.choices, rendering.cli_help)


def _flag(parser: argparse.ArgumentParser, name: str, default: Any, choices: tuple[str, ...], help: str) -> None:
    """`--name`: an on/off pair for a boolean, a number, or text (one of `choices` when there are any)."""
    flag = "--" + name.replace("_", "-")
    if isinstance(default, bool):
        parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help)
        return
    shown = f" (default {default})" if default is not None else ""
    if isinstance(default, (int, float)):
        parser.add_argument(flag, default=default, type=float, help=help + shown)
    else:
        parser.add_argument(flag, default=default, choices=choices or None, help=help + shown)


def _isolate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", help="image files, folders (searched recursively) or globs")
    parser.add_argument("--out", "-o", type=Path, required=True, help="output folder; the input tree is mirrored")
    _option_arguments(parser)
    parser.add_argument("--mask-on-input", action="store_true",
                        help="also write <stem>-mask.png beside each output: the product's mask on the input photo's "
                        "canvas (its size, the product where it is in the photo), found from the pixels; no paid run")
    parser.add_argument("--format", default="png", choices=catalogue.OUTPUT_FORMATS, help="output file format")
    parser.add_argument("--formats", default=None, metavar="NAMES",
                        help="also write each photo's marketplace files, OUT/<preset>/<its path>.jpg: shipped "
                        "presets by name, comma-separated (amazon,walmart,instagram-portrait), or 'all'; see "
                        "'python -m runflow_api formats'. One paid run per photo, at the resolution they need")
    parser.add_argument("--preset", action="append", default=[], metavar="SPEC",
                        help="also write a custom preset's files, e.g. '1200x1500,fill=0.8,bg=#f5f5f5,jpeg,cap=3MB,"
                        "name=my-shop' (repeatable)")
    parser.add_argument("--preset-file", action="append", default=[], type=Path, metavar="FILE",
                        help="also write the files of every custom preset in FILE (one preset string a line)")
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
    parser.add_argument("--force", action="store_true",
                        help="run the service again for every photo, ignoring the cache: PAYS again for each "
                        "(to change only how outputs look, change a rendering option: that is free)")
    parser.add_argument("--rewrite", action="store_true",
                        help="re-render every output from its stored result, free (outputs whose result is no "
                        "longer stored are priced as new runs first)")
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
    formats = commands.add_parser("formats", help="list the marketplace presets (canvas, background, fill, "
                                  "format, cap, source)")
    formats.add_argument("--preset-file", type=Path, default=None,
                         help="also check and list the custom presets in this file (one preset string a line)")
    return parser


def _client(args: argparse.Namespace, emulator: bool, callbacks: CallbackSettings | None = None) -> RunflowClient:
    # A catalogue is one pass: keeping recent results in memory would only grow the process.
    options: dict[str, Any] = {"max_concurrency": getattr(args, "concurrency", 8), "memory_cache": False,
                               "team_budget": getattr(args, "team_budget", None), "callbacks": callbacks or False}
    if getattr(args, "dry_run", False):  # no key needed, and no emulator started, to send nothing
        if emulator:
            options["service_id"] = service_address.EMULATOR_SERVICE_ID  # so the plan sees the emulator's cache
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
    PostProcessing(background="white").render_image(result.image).save(white, quality=92, icc_profile=colour.srgb_icc())
    print(f"run {result.run_id}: {result.image.size[0]}x{result.image.size[1]} {result.aspect_ratio}, "
          f"{'cached' if result.cached else f'{result.elapsed_s:.1f} s'}")
    print(f"Wrote {out.resolve()} (transparent) and {white.resolve()} (on white).")
    paid = "cached: nothing was paid" if result.cached else f"paid ${result.cost or PRICE_PER_IMAGE}"
    print("Service: the bundled emulator, nothing was paid." if emulator else f"Service: Runflow, {paid}.")
    return EXIT_OK


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
        if args.command == "formats":
            custom = marketplace_presets.read_file(args.preset_file) if args.preset_file else []
            print(marketplace.format_table([*marketplace.list_presets(), *custom]))
            return EXIT_OK
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
