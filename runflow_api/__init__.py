"""Runflow product isolation: a standalone client for `runflow/product-isolation`.

Imports neither torch nor ComfyUI, so it serves the ComfyUI nodes, the command line and plain scripts alike:

    from runflow_api import RunflowClient
    with RunflowClient() as client:                       # key from RUNFLOW_API_KEY or the key file
        result = client.isolate("shoe.jpg", aspect_ratio="auto", resolution="2K")
        result.image.save("shoe-isolated.png")
"""

from .version import PACK_VERSION

__version__ = PACK_VERSION

from .client import RunflowClient  # noqa: E402
from .errors import (  # noqa: E402
    APIError,
    AuthenticationFailed,
    BadRequest,
    Conflict,
    InputRejected,
    InsufficientCredit,
    MissingApiKey,
    NetworkError,
    NotFound,
    OutputRejected,
    PermissionDenied,
    RateLimited,
    RunFailed,
    RunflowCancelled,
    RunflowError,
    RunflowTimeout,
    ServiceUnavailable,
    SignedUrlExpired,
    SpendLimitExceeded,
    TeamBudgetExceeded,
    ValidationFailed,
)
from .pictures.marketplace import list_presets, render_preset, render_presets  # noqa: E402
from .pictures.placement import Placement, place_on_input  # noqa: E402
from .pictures.post_processing import PostProcessing  # noqa: E402
from .pictures.result_types import BatchPlan, ImageURL, IsolationResult, ProgressEvent  # noqa: E402
from .product_isolation import ASPECT_RATIOS, MODEL_ID, PRICE_PER_IMAGE, RESOLUTIONS, IsolationParams  # noqa: E402
from .service.account import Balance  # noqa: E402
from .service.http import RetryPolicy, Timeouts  # noqa: E402
from .service.runs import PollPolicy  # noqa: E402

__all__ = [
    "APIError", "ASPECT_RATIOS", "AuthenticationFailed", "BadRequest", "Balance", "BatchPlan", "Conflict", "ImageURL",
    "InputRejected", "InsufficientCredit", "IsolationParams", "IsolationResult", "MODEL_ID", "MissingApiKey",
    "NetworkError", "NotFound", "OutputRejected", "PRICE_PER_IMAGE", "PostProcessing", "PermissionDenied", "Placement",
    "PollPolicy", "ProgressEvent", "RESOLUTIONS", "RateLimited", "RetryPolicy", "RunFailed", "RunflowCancelled",
    "RunflowClient", "RunflowError", "RunflowTimeout", "ServiceUnavailable", "SignedUrlExpired", "SpendLimitExceeded",
    "TeamBudgetExceeded", "Timeouts", "ValidationFailed", "place_on_input",
    "list_presets", "render_preset", "render_presets",
]
