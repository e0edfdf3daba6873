"""Placeholder: the resnet family is being written."""
