"""The reference application's workflows: ``OrderSaga`` (with its approval) and the batches."""
