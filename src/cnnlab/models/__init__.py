"""The architecture zoo: one module per family; importing this package registers them all.

Adding a family is one module here plus one line in the import list below.
"""

from cnnlab.models import (  # noqa: F401  (imported for their registrations)
    alexnet,
    densenet,
    fast,
    googlenet,
    lab,
    lenet,
    nin,
    resnet,
    vgg,
)
