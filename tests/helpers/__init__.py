"""Shared test helpers: fakes of our own interfaces, corpora, fuzzing, workflow environments."""
