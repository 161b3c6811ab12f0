"""The reference application's activities: the order store, orders, batches, the approval policy."""
