"""The process node (node.py) and what it is made of."""

from .images import Image, Images
from .network import Network
from .node import ProcessNode

__all__ = ["Image", "Images", "Network", "ProcessNode"]
