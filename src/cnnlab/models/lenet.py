"""Placeholder: the lenet family is being written."""
