"""How a person's name is shown to someone without the right to see it in full: one rule for the
API (without the ``pii`` role) and the weekly brief."""

from __future__ import annotations


def mask_name(name):
    """张三 -> 张*, 张小明 -> 张*明, 欧阳小明 -> 欧**明."""
    if not isinstance(name, str) or not name:
        return name
    if len(name) == 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]
