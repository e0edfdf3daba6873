"""Placeholder: the alexnet family is being written."""
