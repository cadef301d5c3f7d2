"""One catalogue through the CLI's isolate command: plan and price it, isolate it, save each result, report.

Files already done are skipped, cached results are free and runs paid for earlier are collected; a dry
run prices the new runs and sends nothing. Each finished item is saved (every image a run returns) and
counted, with its QA flags; the summary and the JSON or HTML report say what happened to every input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..client import RunflowClient
from ..errors import InsufficientCredit, RunflowCancelled, RunflowError, SpendLimitExceeded
from ..flow import run_metadata
from ..flow.progress import ProgressTally
from ..pictures import qa
from ..pictures.post_processing import PostProcessing, command_line_names
from ..pictures.result_types import BatchPlan, Charges, IsolationResult
from ..product_isolation import PRICE_PER_IMAGE, RESOLUTIONS, IsolationParams, option_names
from . import folders as catalogue
from . import marketplace_catalogue, report_html
from .marketplace_catalogue import MarketplaceFiles
from .masks import MaskWriter
from .renderings import DIFFERENT, Renderings

EXIT_OK, EXIT_FAILED, EXIT_REFUSED, EXIT_INTERRUPTED = 0, 1, 2, 130
AS_STORED = PostProcessing.of(outputs="all")  # every image a run returns, no pixel changed: what the stream gives


@dataclass
class Summary:
    total: int = 0
    skipped: int = 0
    rerendered: int = 0  # outputs made again from stored results, for other rendering options (free)
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
    not_read: list[catalogue.Skipped] = field(default_factory=list)  # files of the inputs that are not photos
    formats: dict[str, Any] | None = None  # the marketplace files' totals (--formats)
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


@dataclass
class _Work:
    """What a command has to do: the items to run (or render again), and which of them are outputs already
    there to draw again (`present`) or to keep while only their marketplace files are made (`kept`)."""

    todo: list[catalogue.Item] = field(default_factory=list)
    present: set[Path] = field(default_factory=set)
    kept: set[Path] = field(default_factory=set)


def run_isolate(args: argparse.Namespace, client: RunflowClient, *, emulator: bool) -> int:
    not_read: list[catalogue.Skipped] = []
    items = catalogue.collect(args.paths, args.out, args.format, written=report_html.own_paths(args.report),
                              skipped=not_read)
    # Every image a run returns is saved: `outputs` is the one rendering option without a flag.
    post = PostProcessing.of(outputs="all", **{name: getattr(args, name) for name in command_line_names()})
    renderings = Renderings(args.out)
    sheet = args.report is not None and args.report.suffix.lower() in report_html.SUFFIXES
    # Every preset is checked here, before anything is read or spent.
    presets = marketplace_catalogue.chosen(args.formats, args.preset, args.preset_file)
    files = MarketplaceFiles(args.out, presets, renderings, rewrite=args.rewrite or args.force,
                             thumbnails=sheet) if presets else None
    summary = Summary(total=len(items), emulator=emulator, not_read=not_read)
    work = _triage(items, args, post, renderings, files, summary)
    options = {name: getattr(args, name) for name in option_names()}
    options["resolution"] = _resolution(args, client, presets, work.todo, renderings, options)
    user_metadata = run_metadata.validate(run_metadata.parse_pairs(args.metadata), what="--metadata")
    _item_metadata("", user_metadata)  # a key the CLI sets itself is refused now, not once per photo
    if _announce(args, client, len(items), work, summary, options, emulator):
        return EXIT_OK  # a dry run: priced, nothing sent

    tally = ProgressTally(len(work.todo), emulator=emulator)
    display = _Display(len(work.todo), args.quiet)
    masks = MaskWriter() if getattr(args, "mask_on_input", False) else None  # issue #37
    started = time.monotonic()
    try:
        for index, stored in client.isolate_stream(
            [item.source for item in work.todo], force_rerun=args.force, on_progress=tally.update,
            rendering=AS_STORED, metadata=lambda index: _item_metadata(work.todo[index].relative, user_metadata),
            **options
        ):
            item = work.todo[index]
            # The outputs are drawn as asked; the masks and the marketplace files start from the result as
            # stored, so a background, margin or shadow for the cut-outs never reaches them.
            outcome = post.render_result(stored) if isinstance(stored, IsolationResult) else stored
            row = _settle(item, outcome, summary, args.format, rewrite=args.force or item.output in work.present,
                          keep=item.output in work.kept)
            if row is not None and isinstance(stored, IsolationResult) and isinstance(outcome, IsolationResult):
                if item.output in work.kept:
                    row.update(renderings.facts(item.output))
                else:  # the contact sheet is a rendering too: its thumbnails are made now, from pixels at hand
                    row.update(renderings.written(item.output, item.source, outcome, post, thumbnails=sheet))
                summary.rerendered += item.output in work.present
                if masks is not None:
                    masks.submit(item.source, stored, item.output, row, item.relative or item.source.name)
                if files is not None:
                    files.submit(item, stored, row)  # rendered on worker threads; this loop goes on
            snapshot = tally.snapshot()
            display.update(snapshot.finished, snapshot.status_line())
        if files is not None:
            files.finish()
    except (KeyboardInterrupt, RunflowCancelled):
        display.close()
        summary.flagged_inputs += masks.finish(summary.flagged) if masks is not None else 0
        if files is not None:
            files.cancel()
        print(
            "\nInterrupted. Finished results are saved; runs already paid for keep going at Runflow. "
            "Run the same command again to collect them without paying twice.",
            file=sys.stderr,
        )
        _write_report(args.report, summary, seconds=time.monotonic() - started)
        return EXIT_INTERRUPTED
    display.close()
    summary.flagged_inputs += masks.finish(summary.flagged) if masks is not None else 0
    _print_summary(summary, time.monotonic() - started, client, emulator)
    if files is not None:
        summary.formats = files.summary()
        print(files.line(), file=sys.stderr)
    _write_report(args.report, summary, seconds=time.monotonic() - started)
    return EXIT_FAILED if summary.failed else EXIT_OK


def _triage(items: list[catalogue.Item], args: argparse.Namespace, post: PostProcessing, renderings: Renderings,
            files: MarketplaceFiles | None, summary: Summary) -> _Work:
    """Sort the folder's items: refused (counted failed), to run, to draw again from their stored result
    (other options, --rewrite; free unless --force pays a new run), with only marketplace files to make,
    or done (skipped, their report row from the record)."""
    work = _Work()
    for item in items:
        if item.refused:
            _fail(item, item.refused, summary)
        elif not catalogue.is_done(item):
            work.todo.append(item)
        elif args.force or args.rewrite or renderings.compare(item.output, post) == DIFFERENT:
            work.todo.append(item)  # made again: from its stored result (free) unless --force pays for a new run
            work.present.add(item.output)
        elif files is not None and files.missing(item):
            work.todo.append(item)  # only marketplace files to make, from its stored result: the output stays
            work.kept.add(item.output)
        else:  # the same options, or an output whose options are unknown (no record): kept
            summary.skipped += 1
            summary.rows.append(_row(item, "skipped", **renderings.facts(item.output),
                                     **(files.skipped(item) if files is not None else {})))
    return work


def _announce(args: argparse.Namespace, client: RunflowClient, total: int, work: _Work, summary: Summary,
              options: dict[str, Any], emulator: bool) -> bool:
    """Say what the command will do and cost, refusing (SpendLimitExceeded) a spend over --max-cost before
    anything is sent; True for a dry run, which stops here with its report written."""
    price = Decimal(0) if emulator else PRICE_PER_IMAGE
    free = " (emulator: free)" if emulator else ""
    todo = work.todo
    if not (args.dry_run or work.present or work.kept or not _worst_case_passes(client, len(todo), args.max_cost)):
        print(f"{total} photo(s): {summary.skipped} already done, at most {len(todo)} new run(s) at ${price} = "
              f"${len(todo) * price:.2f}{free}; cached and duplicate photos cost nothing.", file=sys.stderr)
        return False
    # Exact figures need every photo read and hashed (about 5 ms each): only when they matter.
    plan = client.plan([item.source for item in todo], force_rerun=args.force, skip_rejected=True, **options)
    counts = (
        f"{total} photo(s): {summary.skipped} already done, {len(work.present)} to re-render with other options, "
        + (f"{len(work.kept)} with only marketplace files to make, " if work.kept else "") +
        f"{summary.failed} refused, {plan.cached} cached, "
        f"{plan.resumable} paid runs to collect, {plan.duplicates} duplicate(s), {plan.rejected} unreadable, "
    )
    if args.dry_run:
        print(counts + _dry_run_price(plan.to_create, emulator), file=sys.stderr)
        _print_not_read(summary)
        _write_report(args.report, summary, plan_only=True)
        return True
    print(counts + f"{plan.to_create} new run(s) at ${price} = ${plan.to_create * price:.2f}{free}.", file=sys.stderr)
    client.check_spend(plan, args.max_cost)
    return False


def _resolution(args: argparse.Namespace, client: RunflowClient, presets: list[Any], todo: list[catalogue.Item],
                renderings: Renderings, options: dict[str, Any]) -> str:
    """The tier to buy. Without presets: --resolution, else the library's default. With presets, an explicit
    --resolution wins (a note says which presets it leaves short: their files are flagged `enlarged`);
    else the smallest tier covering every preset for every photo (`marketplace_catalogue.catalogue_tier`),
    unless this output folder's photos are all stored already at a smaller one: then that one, since a
    second paid run for the same photo is never made to add presets (a note says how to get more pixels)."""
    default = IsolationParams().resolution
    if not presets:
        return str(args.resolution or default)
    tiers = list(RESOLUTIONS)
    choice = marketplace_catalogue.catalogue_tier(presets, args.aspect_ratio, [item.source for item in todo])
    if args.resolution is not None:
        if tiers.index(args.resolution) < tiers.index(choice.resolution):
            print(f"Note: --resolution {args.resolution} is smaller than the {choice.resolution} these presets need "
                  "(same price): their files may be flagged enlarged. Leave out --resolution to let --formats "
                  "choose.", file=sys.stderr)
        return str(args.resolution)
    if choice.enlarged:
        print(f"Note: {', '.join(choice.enlarged)} need more pixels than some photos have (or than 4K holds): "
              "their files come from the 4K result (the service's detail, not the photo's); a file whose product "
              "had to be scaled up is flagged enlarged.", file=sys.stderr)
    sources = [item.source for item in todo]
    if todo and renderings.path.exists() and not args.force:
        wanted = {**options, "resolution": choice.resolution}
        if client.plan(sources, skip_rejected=True, **wanted).to_create:
            for smaller in reversed(tiers[:tiers.index(choice.resolution)]):
                if not client.plan(sources, skip_rejected=True, **{**options, "resolution": smaller}).to_create:
                    print(f"Note: these photos are stored at {smaller}, so the presets are rendered from that "
                          f"(no second paid run); --resolution {choice.resolution} pays again for more pixels.",
                          file=sys.stderr)
                    return smaller
    return choice.resolution


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


def _settle(item: catalogue.Item, outcome: Any, summary: Summary, fmt: str, *, rewrite: bool,
            keep: bool = False) -> dict[str, Any] | None:
    """Save a finished item's outputs (`keep`: they are in place as they should be) and count it; its
    report row when it succeeded (outputs in place)."""
    written: list[Path] = []
    if isinstance(outcome, IsolationResult):
        try:
            if keep or not rewrite and _written_by_another(item, outcome):
                written = catalogue.numbered_outputs(item.output, len(outcome.images))
            else:
                written = catalogue.save_all(outcome, item.output, fmt)
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
        return summary.rows[-1]
    _fail(item, str(outcome), summary, run_id=outcome.run_id)
    return None


def _written_by_another(item: catalogue.Item, outcome: IsolationResult) -> bool:
    """Machines of a fleet that share one --out folder write each photo once: a result another process or
    machine produced, whose output appeared since this run listed the folder (only unfinished photos were
    listed), was written by that producer. Encoding it again would cost each machine the whole catalogue's
    CPU for nothing."""
    return outcome.cached and bool(outcome.waited_for or outcome.shared_hit) and catalogue.is_done(item)


def _fail(item: catalogue.Item, error: str, summary: Summary, run_id: str | None = None) -> None:
    summary.failed += 1
    summary.rows.append(_row(item, "failed", run_id=run_id, error=error))
    print(f"FAILED {item.source}: {error}", file=sys.stderr)


def _print_summary(summary: Summary, seconds: float, client: RunflowClient, emulator: bool) -> None:
    totals = client.ledger.totals(client.service_id)
    spent = "free (emulator)" if emulator else f"${summary.cost:.2f} (all time: ${totals.all_cost:.2f})"
    print(
        f"Done in {seconds:.1f} s: {summary.done} isolated ({summary.resumed} collected from earlier runs), "
        f"{summary.cached} from cache ({summary.rerendered} re-rendered with other options), {summary.skipped} "
        f"already done, {summary.failed} failed{_failed_names(summary)}. Spent {spent}.",
        file=sys.stderr,
    )
    _print_not_read(summary)
    if summary.flagged_inputs:
        print(qa.flagged_line(summary.flagged, summary.flagged_inputs), file=sys.stderr)
    if client.fleet is not None:
        print(fleet_line(client, shared=summary.shared, waited=summary.waited_for_machine), file=sys.stderr)


def _failed_names(summary: Summary, names: int = 10) -> str:
    """" (a.jpg, b.heic)": the inputs that failed, named in the summary (their reasons are above and in
    the report)."""
    failed = [row["name"] or Path(row["input"]).name for row in summary.rows if row["status"] == "failed"]
    if not failed:
        return ""
    return " (" + ", ".join(failed[:names]) + (f", and {len(failed) - names} more" if len(failed) > names else "") + ")"


def _print_not_read(summary: Summary) -> None:
    if summary.not_read:
        print(catalogue.skipped_line(summary.not_read), file=sys.stderr)


def _write_report(path: Path | None, summary: Summary, *, plan_only: bool = False, seconds: float = 0.0) -> None:
    """The report the extension of `path` asks for: .html a contact sheet to look at, else JSON. Inputs
    finished by an earlier run get their flags from their saved outputs, so both cover the catalogue."""
    if path is None:
        return
    if not plan_only:
        report_html.flag_skipped(summary.rows)
    names = ("total", "skipped", "rerendered", "done", "cached", "resumed", "failed", "shared", "waited_for_machine")
    counts = {k: getattr(summary, k) for k in names}
    flagged = sum(bool(row.get("flags")) for row in summary.rows)
    totals = {"cost": f"{summary.cost:.2f}", "emulator": summary.emulator, "dry_run": plan_only, "flagged": flagged,
              "seconds": round(seconds, 1)}
    not_read = [{"path": str(entry.path), "reason": entry.reason} for entry in summary.not_read]
    report: dict[str, Any] = {"summary": {**counts, **totals, "not_read": len(not_read)}, "items": summary.rows,
                              "not_read": not_read}
    if summary.formats is not None:
        report["summary"]["formats"] = summary.formats
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in report_html.SUFFIXES:
        report_html.write(path, report)
    else:
        path.write_text(json.dumps(report, indent=2), encoding="utf-8")


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
