"""``{% xchain_panel %}``: the dashboard's cross-chain section (inventory per chain and
token, sagas in flight, PnL per token), rendered from ``core/_xchain.html`` with the
selectors' data, so the dashboard page needs one line for it."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.inclusion_tag("core/_xchain.html")
def xchain_panel() -> dict[str, Any]:
    from arbbot.crosschain.saga import FINAL
    from webapp.core import selectors
    from webapp.core.models import XChainInventory, XChainSaga

    return {
        "xchain_inventory": list(XChainInventory.objects.all()[:50]),
        "xchain_open": list(XChainSaga.objects.exclude(state__in=FINAL).order_by("-id")[:10]),
        "xchain_recent": list(XChainSaga.objects.filter(state__in=FINAL).order_by("-id")[:10]),
        "xchain_pnl": selectors.xchain_pnl(),
    }
