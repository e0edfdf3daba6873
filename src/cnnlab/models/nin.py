"""Placeholder: the nin family is being written."""
