"""Synthetic binary markets: ids and static parameters derived from the seed only.

Market *i* of seed *s* has the same condition id and token ids in every scenario, so a test (or an operator) can
switch scenarios without the ids changing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# pUSD (collateral since CLOB V2), used as the rewards asset address.
REWARDS_ASSET = "0xC011a7E12a19f7B1f670d46F03B03f3342E82DFB"

_TOPICS = (
    ("Will SBX-{n} close above {k} on Friday?", "sbx-{n}-close-above-{k}"),
    ("Will the sandbox city reach {k} mm of rain in week {n}?", "sandbox-rain-{k}mm-week-{n}"),
    ("Will candidate #{n} poll above {k}%?", "candidate-{n}-poll-above-{k}"),
    ("Will team {n} score more than {k} goals this season?", "team-{n}-more-than-{k}-goals"),
)


@dataclass(frozen=True)
class MarketSpec:
    index: int
    condition_id: str  # 0x + 64 hex
    question_id: str  # 0x + 64 hex
    yes_token: str  # decimal string, ~77 digits
    no_token: str
    question: str
    slug: str
    min_order_size: int  # shares
    neg_risk: bool
    rewards_min_size: int  # shares; 0 = no rewards
    rewards_max_spread: float  # cents; 0 = no rewards
    rewards_daily_rate: float  # pUSD per day; 0 = no rewards
    end_date_iso: str

    @property
    def tokens(self) -> tuple[str, ...]:
        return tuple(t for t in (self.yes_token, self.no_token) if t)

    @property
    def has_rewards(self) -> bool:
        return self.rewards_daily_rate > 0

    def other(self, token: str) -> str:
        return self.no_token if token == self.yes_token else self.yes_token

    def outcome(self, token: str) -> str:
        return "Yes" if token == self.yes_token else "No"


def _hex256(rng: random.Random) -> str:
    return "0x" + f"{rng.getrandbits(256):064x}"


def _token_id(rng: random.Random) -> str:
    # Real token ids are uint256 rendered in decimal (76-78 digits); force the top bit so they are long.
    return str(rng.getrandbits(256) | (1 << 255))


def make_markets(seed: int, n: int) -> list[MarketSpec]:
    out: list[MarketSpec] = []
    for i in range(n):
        rng = random.Random(f"pmm-sandbox/market/{seed}/{i}")
        cid = _hex256(rng)
        qid = _hex256(rng)
        yes = _token_id(rng)
        no = _token_id(rng)
        q_tmpl, slug_tmpl = _TOPICS[i % len(_TOPICS)]
        k = rng.randint(2, 99)
        question = q_tmpl.format(n=i + 1, k=k)
        slug = slug_tmpl.format(n=i + 1, k=k)
        rewarded = i % 4 != 3  # every fourth market has no liquidity rewards
        out.append(
            MarketSpec(
                index=i,
                condition_id=cid,
                question_id=qid,
                yes_token=yes,
                no_token=no,
                question=question,
                slug=slug,
                min_order_size=5,
                neg_risk=(i % 5 == 4),
                rewards_min_size=rng.choice((20, 50, 100, 200)) if rewarded else 0,
                rewards_max_spread=rng.choice((3.0, 3.5, 4.5)) if rewarded else 0.0,
                rewards_daily_rate=float(rng.choice((5, 10, 25, 50, 100))) if rewarded else 0.0,
                end_date_iso="2027-01-01T00:00:00Z",
            )
        )
    return out
