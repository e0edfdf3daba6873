"""Placeholder: the googlenet family is being written."""
