"""Placeholder: the vgg family is being written."""
