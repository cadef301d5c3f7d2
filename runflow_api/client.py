"""`RunflowClient`: the public face of the engine, for the ComfyUI nodes, the CLI and plain scripts.

A client holds one pooled HTTP session, the result cache, the run journal and the spend ledger. Each
call validates every input before any request, works out what it would spend (after cache hits,
journaled runs and duplicates), refuses if that passes the spend limit or the balance (`spending.py`),
and only then starts runs. Staging (`staging.py`) and the account reads (`account.py`) are one call each.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputRejected, RunflowCancelled, RunflowError
from .fleet import (
    BUDGET_ENV,
    Fleet,
    FleetMoney,
    SharedInputs,
    SharedResults,
    SharedStore,
    resolve_store,
    team_budget_from_env,
)
from .fleet.shared_claims import FleetClaims
from .fleet.shared_durations import SharedDurations
from .fleet.shared_journal import SharedJournal
from .flow import run_metadata
from .flow.batch import Outcome, ProgressCallback, Source, run_batch, stream_outcomes
from .flow.preparation import input_pixels, prepare_job
from .flow.run_metadata import MetadataOption
from .flow.shared_state import Engine, Job, RunSlots
from .flow.spending import check_spend, dollars
from .flow.staging import stage_many, stage_one
from .money.cache import ResultCache
from .money.claims import Claims, LocalClaims
from .money.durations import DurationModel, DurationStore, EstimateStore
from .money.journal import RunJournal
from .money.ledger import Ledger
from .money.recent import shared_recent_results
from .pictures.post_processing import PostProcessing, split_options
from .pictures.result_types import BatchPlan, IsolationResult
from .product_isolation import MODEL_ID, PRICE_PER_IMAGE, IsolationParams
from .service import address as service_address
from .service import callbacks
from .service.account import Balance, read_balance, read_health, read_me
from .service.assets import StagedAsset
from .service.callbacks import CallbackSettings
from .service.cancel import CancelCheck
from .service.http import RetryPolicy, Timeouts, Transport
from .service.runs import PollPolicy
from .settings import config, directories

DEFAULT_CACHE_BYTES = 2 * 1024**3
MAX_CONCURRENCY = 64


class RunflowClient:
    """Isolate products with `runflow/product-isolation`.

    `api_key` and `base_url` default to RUNFLOW_API_KEY / RUNFLOW_API_BASE, then the key file.
    `service_id` names the service in cache keys (default: the base URL), so results from the emulator
    and from the real service never mix. `memory_cache` keeps recent results decoded in memory for
    repeats in the same process (ComfyUI re-queues); a one-pass catalogue run turns it off.
    `callbacks`: settings (public URL and secret) to have Runflow call back instead of polling, False for
    none, None (default) for RUNFLOW_PUBLIC_URL + RUNFLOW_CALLBACK_SECRET when a receiver runs in this
    process (ComfyUI's route, a CLI `--callback-listen`).
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        max_concurrency: int = 8,
        cache: bool = True,
        memory_cache: bool = True,
        cache_dir: Path | str | None = None,
        cache_max_bytes: int = DEFAULT_CACHE_BYTES,
        data_dir: Path | str | None = None,
        journal_max_age_s: float = 24 * 3600,
        spend_limit: Decimal | float | str | None = None,
        balance_check_min_runs: int = 10,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        poll: PollPolicy | None = None,
        allow_insecure: bool = False,
        verify: bool | str = True,
        service_id: str | None = None,
        model_id: str = MODEL_ID,
        shared_store: str | SharedStore | None = None,
        team_budget: Decimal | float | str | None = None,
        callbacks: CallbackSettings | bool | None = None,
    ) -> None:
        if not 1 <= int(max_concurrency) <= MAX_CONCURRENCY:
            raise InputRejected(f"max_concurrency must be 1..{MAX_CONCURRENCY}, got {max_concurrency}.")
        self.base_url = service_address.resolve_base_url(base_url)
        key = config.resolve_api_key(api_key)
        self.max_concurrency = int(max_concurrency)
        self.spend_limit = dollars(spend_limit, "spend_limit")
        self.balance_check_min_runs = balance_check_min_runs
        data = Path(data_dir) if data_dir is not None else directories.data_dir()
        self.ledger = Ledger.for_path(data / "ledger.jsonl")
        transport = Transport(
            self.base_url,
            key,
            timeouts=timeouts,
            retry=retry,
            pool_size=max(10, 2 * self.max_concurrency),
            allow_insecure=allow_insecure,
            verify=verify,
        )
        service = service_id or self.base_url
        store = resolve_store(shared_store)
        budget = (dollars(team_budget, "team_budget") if team_budget is not None
                  else dollars(team_budget_from_env(), BUDGET_ENV))
        if budget is not None and store is None:
            raise InputRejected(
                "A team budget needs a shared store, where every machine's spend is counted: set "
                "RUNFLOW_SHARED_STORE=redis://host:port/db (or the client's shared_store), or use spend_limit "
                "for a limit on this call alone."
            )
        local_claims, local_durations = LocalClaims(data / "claims"), DurationStore(data / "durations.json")
        claims: Claims = local_claims
        durations: EstimateStore = local_durations
        mirror: SharedJournal | None = None
        self.fleet: Fleet | None = None
        if store is not None:  # each shared tier sits behind its local twin
            claims = FleetClaims(local_claims, store)
            durations = SharedDurations(store, local_durations)
            mirror = SharedJournal(store, max_age_s=journal_max_age_s)
            money = FleetMoney(store, team_budget=budget, local_ledger=self.ledger,
                               free=service == service_address.EMULATOR_SERVICE_ID)
            self.fleet = Fleet(store, SharedResults(store), money, SharedInputs(store))
        self._engine = Engine(
            transport=transport,
            cache=ResultCache(Path(cache_dir) if cache_dir else directories.cache_dir(), cache_max_bytes)
            if cache else None,
            journal=RunJournal(data / "journal", max_age_s=journal_max_age_s, mirror=mirror),
            claims=claims,
            ledger=self.ledger,
            durations=DurationModel(store=durations, scope=f"{service}\t{model_id}"),
            fleet=self.fleet,
            poll=poll or PollPolicy(),
            service_id=service,
            model_id=model_id,
            slots=RunSlots(self.max_concurrency),
            recent=shared_recent_results() if cache and memory_cache else None,
            callbacks=_callback_settings(callbacks),
        )

    def __repr__(self) -> str:
        return f"RunflowClient({self.base_url!r}, key={config.mask_key(self._engine.transport._api_key)})"

    def __enter__(self) -> RunflowClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._engine.transport.close()

    @property
    def service_id(self) -> str:
        return self._engine.service_id

    @property
    def cache(self) -> ResultCache | None:
        return self._engine.cache

    @property
    def journal(self) -> RunJournal:
        return self._engine.journal

    # -- isolation -----------------------------------------------------------------------------------

    def isolate(
        self,
        image: Any,
        *,
        params: IsolationParams | None = None,
        force_rerun: bool = False,
        on_progress: ProgressCallback | None = None,
        should_cancel: CancelCheck | None = None,
        metadata: MetadataOption = None,
        rendering: PostProcessing | None = None,
        **options: Any,
    ) -> IsolationResult:
        """One image. Raises the item's error instead of returning it.

        Options come as keywords, split by their two declarations: the isolation options (the fields of
        `IsolationParams`: `aspect_ratio`, `resolution`, `prompt`, `lossless`; sent or keyed, so each value
        is its own paid result) and the rendering options (the fields of `PostProcessing`: `background`,
        `outputs`, `edges`, `margin`; made locally from the stored result, free to change). `params` and
        `rendering` are the same ready made; an unknown name is refused before anything is read."""
        outcome = self.isolate_many(
            [image],
            params=params,
            force_rerun=force_rerun,
            on_progress=on_progress,
            should_cancel=should_cancel,
            metadata=metadata,
            rendering=rendering,
            **options,
        )[0]
        if isinstance(outcome, RunflowError):
            raise outcome
        return outcome

    def isolate_many(
        self,
        images_in: Sequence[Any],
        *,
        params: IsolationParams | None = None,
        force_rerun: bool = False,
        spend_limit: Decimal | float | str | None = None,
        on_progress: ProgressCallback | None = None,
        should_cancel: CancelCheck | None = None,
        metadata: MetadataOption = None,
        rendering: PostProcessing | None = None,
        **options: Any,
    ) -> list[Outcome]:
        """Every image as its own run, all in flight at once; results (or errors) in input order.

        Every input (and its `metadata`: one mapping of strings for all, or a function of the input's
        index) is validated first: one bad input refuses the whole call before anything is spent.
        `outputs="all"` keeps every image a run returns in `result.images`; "first" only the first (a
        rendering choice: every image is cached either way). `edges="clean"`, `margin` and `background` are
        drawn on the way out, so changing them never starts a run. Options as for `isolate`."""
        resolved, post = _declared(params, rendering, options)
        jobs = self._prepare(images_in, resolved, metadata)
        self.check_spend(self._plan([job.cache_key for job in jobs], force_rerun), spend_limit)
        if should_cancel is not None and should_cancel():
            raise RunflowCancelled("Cancelled before anything started.")
        outcomes = run_batch(
            self._engine,
            jobs,
            concurrency=2 * self.max_concurrency,
            force_rerun=force_rerun,
            on_progress=on_progress,
            should_cancel=should_cancel,
        )
        shaped = []
        for outcome in outcomes:  # cleaning edges takes up to ~1 s an image at 4K: Cancel is heard between them
            if post.changes_pixels() and should_cancel is not None and should_cancel():
                raise RunflowCancelled("Cancelled while cleaning edges or drawing the other rendering options. "
                                       "Every result is cached: run again to get them at no cost.")
            shaped.append(_rendered(outcome, post))
        return shaped

    def isolate_stream(
        self,
        images_in: Iterable[Any],
        *,
        params: IsolationParams | None = None,
        force_rerun: bool = False,
        on_progress: ProgressCallback | None = None,
        should_cancel: CancelCheck | None = None,
        metadata: MetadataOption = None,
        rendering: PostProcessing | None = None,
        **options: Any,
    ) -> Iterator[tuple[int, Outcome]]:
        """(index, result or error) as each finishes, for catalogues too big to hold in memory.

        Inputs (typically paths) are loaded lazily by the workers, a few per worker at a time; an
        unreadable file (or its bad `metadata`) is that item's error, not the stream's. Call `plan` and
        `check_spend` first to guard the spend: a stream does not know its length in advance."""
        resolved, post = _declared(params, rendering, options)

        def sources() -> Iterator[Source]:
            for index, image in enumerate(images_in):
                yield index, functools.partial(self._job, image, resolved, index, metadata, share_reads=True)

        outcomes = stream_outcomes(
            self._engine,
            sources(),
            concurrency=2 * self.max_concurrency,
            window=3 * self.max_concurrency,
            force_rerun=force_rerun,
            on_progress=on_progress,
            should_cancel=should_cancel,
            lazy_hits=True,  # a catalogue writes stored results' bytes as they are: no decode for them
        )
        return ((index, _rendered(outcome, post)) for index, outcome in outcomes)

    def plan(
        self,
        images_in: Iterable[Any],
        *,
        params: IsolationParams | None = None,
        force_rerun: bool = False,
        skip_rejected: bool = False,
        **options: Any,
    ) -> BatchPlan:
        """What a call would do and cost, without sending anything. Holds one image in memory at a time.

        With `skip_rejected`, inputs that would be refused (an unreadable file in a catalogue) are counted
        in `plan.rejected` instead of raising: they will fail alone, at no cost. Rendering options are
        accepted (and checked) like the entry points': they change nothing of the plan."""
        resolved, _ = _declared(params, None, options)
        keys = []
        rejected = 0
        for index, image in enumerate(images_in):
            try:
                keys.append(self._job(image, resolved, index).cache_key)
            except InputRejected:
                if not skip_rejected:
                    raise
                rejected += 1
        return replace(self._plan(keys, force_rerun), total=len(keys) + rejected, rejected=rejected)

    def check_spend(self, plan: BatchPlan, spend_limit: Decimal | float | str | None = None) -> None:
        """Refuse before any create when the new runs would pass the limit, the team budget or the balance
        (see `spending.check_spend`); `spend_limit` overrides the client's for this call."""
        limit = dollars(spend_limit, "spend_limit") if spend_limit is not None else self.spend_limit
        check_spend(plan, limit, fleet=self.fleet, read_balance=self.balance,
                    balance_check_min_runs=self.balance_check_min_runs)

    def read_input(self, image: Any, *, name: str = "image") -> np.ndarray:
        """An input's pixels as isolate() reads them (uint8 HxWx3 or HxWx4, EXIF orientation applied); a
        URL is downloaded again, free, under the same rules. What `place_on_input` needs for a URL input."""
        return input_pixels(self._engine, image, name)

    def stage(self, image: Any, *, lossless: bool = False, should_cancel: CancelCheck | None = None) -> StagedAsset:
        """Upload an image and return its hosted https URL (short-lived), to pass to other API nodes."""
        return stage_one(self._engine.transport, image, "image", lossless, should_cancel)

    def stage_many(
        self,
        images_in: Sequence[Any],
        *,
        lossless: bool = False,
        should_cancel: CancelCheck | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> list[StagedAsset]:
        """Upload a batch, up to `max_concurrency` at once; the assets in input order (see `staging.stage_many`)."""
        return stage_many(self._engine.transport, images_in, max_concurrency=self.max_concurrency, lossless=lossless,
                          should_cancel=should_cancel, on_progress=on_progress)

    # -- account -------------------------------------------------------------------------------------

    def me(self) -> dict[str, Any]:
        """The key's user and memberships (org, role, scopes): the cheap "Test connection" call."""
        return read_me(self._engine.transport)

    def balance(self) -> Balance:
        return read_balance(self._engine.transport)

    def health(self) -> dict[str, Any]:
        return read_health(self._engine.transport)

    # -- internals -----------------------------------------------------------------------------------

    def _job(
        self, image: Any, params: IsolationParams, index: int, metadata: MetadataOption = None, *,
        share_reads: bool = False,
    ) -> Job:
        secrets = (self._engine.transport._api_key, self._engine.callbacks.secret if self._engine.callbacks else None)
        return prepare_job(image, params, index=index, engine=self._engine,
                           metadata=run_metadata.resolve(metadata, index, secrets=secrets), share_reads=share_reads)

    def _prepare(self, images_in: Sequence[Any], params: IsolationParams, metadata: MetadataOption = None) -> list[Job]:
        if isinstance(images_in, (str, bytes)) or not isinstance(images_in, Sequence):
            raise InputRejected("images must be a list of images; for a single image use isolate().")
        if len(images_in) == 0:
            raise InputRejected("The batch is empty: pass at least one image.")
        if len(images_in) == 1:
            return [self._job(images_in[0], params, 0, metadata)]
        # Hashing 16 2K images takes ~130 ms on one thread; hashlib and Pillow release the GIL, so spread it.
        with ThreadPoolExecutor(max_workers=min(len(images_in), os.cpu_count() or 2)) as pool:
            return list(pool.map(lambda pair: self._job(pair[1], params, pair[0], metadata), enumerate(images_in)))

    def _plan(self, keys: list[str], force_rerun: bool) -> BatchPlan:
        unique = list(dict.fromkeys(keys))
        cache = self._engine.cache
        local = {key for key in unique if not force_rerun and cache is not None and cache.contains(key)}
        shared = set()
        if self.fleet is not None and cache is not None and not force_rerun:
            shared = self.fleet.results.present([key for key in unique if key not in local])
        cached = len([key for key in unique if key in local or key in shared])
        journaled = self._engine.journal.find_many([key for key in unique if key not in local and key not in shared])
        resumable = sum(1 for entry in journaled.values() if entry.run_id)
        return BatchPlan(len(keys), len(unique), cached, resumable, len(unique) - cached - resumable, PRICE_PER_IMAGE)


def _callback_settings(option: CallbackSettings | bool | None) -> CallbackSettings | None:
    """The client's `callbacks` option: explicit settings, off (False), or the host's (None / True)."""
    if isinstance(option, CallbackSettings):
        return option
    return callbacks.host_settings() if option is None or option is True else None


def _declared(params: IsolationParams | None, rendering: PostProcessing | None, options: dict[str, Any]
              ) -> tuple[IsolationParams, PostProcessing]:
    """A call's keywords split by the two declarations, each checked: unknown names and bad values are
    refused here, before any image is read or anything is spent."""
    isolation, local = split_options(options)
    return IsolationParams.of(params, **isolation), PostProcessing.of(rendering, **local)


def _rendered(outcome: Outcome, post: PostProcessing) -> Outcome:
    """A result as the caller asked for it (`PostProcessing.render_result`); an error as it is."""
    return post.render_result(outcome) if isinstance(outcome, IsolationResult) else outcome
