"""Exponential backoff with jitter between attempts of one task."""
from __future__ import annotations

import random

from ..model import Policy


def backoff(policy: Policy, failed_attempts: int, rng: random.Random) -> float:
    """Seconds to wait after the n-th failed attempt: base * 2^(n-1), capped, then 'equal jitter' (half fixed, half random)."""
    delay = min(policy.retry_max_delay, policy.retry_delay * 2 ** max(0, failed_attempts - 1))
    return float(delay / 2 + rng.uniform(0, delay / 2))
