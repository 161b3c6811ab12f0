"""A carts entity that continues as new after every signal (tests of what crosses runs)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from examples.carts.workflows import CartEntity
    from relayflow import EntityCarry, EntityEnd, EntityOptions

__all__ = ["ShortRunCart"]


@workflow.defn(name="ShortRunCart")
class ShortRunCart(CartEntity):
    """``CartEntity`` with a one-signal run."""

    options = EntityOptions(idle=timedelta(hours=1), max_signals=1)

    @workflow.run
    async def run(self, carried: EntityCarry | None = None) -> EntityEnd:
        """Live until idle."""
        return await self.live(carried)
