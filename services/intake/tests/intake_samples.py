"""Sample request bodies for intake's tests (a plain module: test files import it by name)."""

from __future__ import annotations

from typing import Any


def complaint_body(**overrides: Any) -> dict[str, Any]:
    """Return a valid complaint body (override any field)."""
    body: dict[str, Any] = {
        "channel": "mobile_app",
        "customer": {"customer_number": "C-0001", "name": "张三", "phone": "13800138000"},
        "description": "转账失败但是扣款了，请尽快处理。",
        "product": "mobile_banking",
    }
    body.update(overrides)
    return body
